/*
 * main.c - the `sluice` command line: offline commands (check-task, explain) that run the task
 * compiler with no server and no database, and dispatch of the client commands (client.c).
 */
#include "cli.h"
#include "sluice/compiler.h"
#include "sluice/file.h"
#include "sluice/runtime.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* client.c (the REST client) may be absent from a build: then its commands say so. */
int sl_cli_client_main(int argc, char **argv) __attribute__((weak));

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

#define MAX_INPUT (64u << 20)

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sluice <command> [options]\n"
        "\n"
        "Offline (no server; no database but for --precheck and verify):\n"
        "  check-task FILE [--sources FILE] [--plugin-dir DIR] [--precheck]\n"
        "        validate a DM task (JSON, bare or {\"task\": ...}); exit 0 if valid, 1 with every\n"
        "        error as \"PATH: message (code N)\"; FILE may be - for stdin; --precheck (with\n"
        "        --sources) also connects to the sources and the target and runs DM's shard-merge\n"
        "        prechecks (auto_increment_ID, schema_of_shard_tables)\n"
        "  explain FILE [--dot] [--sources FILE] [--plugin-dir DIR]\n"
        "        print the pipelines the task compiles to: per source, each phase's plugin\n"
        "        instances with their resolved options (secrets masked) and edges; --dot prints\n"
        "        Graphviz DOT\n"
        "  verify FILE --sources FILE [--threads N] [--chunk-rows N] [--chunks-per-second R]\n"
        "         [--retries N] [--retry-delay-ms MS] [--repair-sql OUT] [--plugin-dir DIR]\n"
        "        compare the task's tables on its sources and target (under its routing, shard\n"
        "        merge and filters) by checksummed key-range chunks; print each differing row\n"
        "        (missing, extra, different); exit 0 if equal, 1 if not; --repair-sql writes the\n"
        "        statements that would repair the target (never applied); --retries re-checksums a\n"
        "        differing chunk that many times (--retry-delay-ms apart, default 1000) so rows\n"
        "        still in flight under replication settle first\n"
        "\n"
        "Client (talk to sluice-server over REST):\n"
        "  [--server URL] source ...    task ...    cluster ...   (sluice <command> --help)\n"
        "\n"
        "  version       print the version\n"
        "  --help        this text\n"
        "\n"
        "--sources FILE: known sources (DM Source objects: one, an array, or a GET /api/v1/sources\n"
        "answer); each source_conf must name one of them, and their flavor checks GTID syntax.\n"
        "--plugin-dir DIR: where sluice-*.so are (default: $SLUICE_PLUGIN_DIR, else\n"
        "<bin>/../lib/sluice/plugins).\n");
}

/* Reads a whole file (or stdin for "-"), bounded. Caller frees. */
/* This machine's CPUs, which size the threads of a task that does not set them (0 = unknown). */
static unsigned ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 0;
}

static char *slurp(const char *path, size_t *len)
{
    char *b = NULL;
    sl_error err = {0};
    int rc = sl_file_read(path, MAX_INPUT, &b, len, &err);
    if (rc == SL_ELIMIT)
        fprintf(stderr, "sluice: %s is larger than %u bytes\n", path, MAX_INPUT);
    else if (rc != 0)
        fprintf(stderr, "sluice: cannot read %s: %s\n", path, err.msg);
    return b;
}

typedef struct args {
    const char *file, *sources, *plugin_dir;
    int dot, precheck;
} args;

/* The options of check-task (explain 0: --precheck) or explain (1: --dot). */
static int parse_args(int argc, char **argv, int explain, args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sources") == 0 && i + 1 < argc) {
            a->sources = argv[++i];
        } else if (strncmp(argv[i], "--sources=", 10) == 0) {
            a->sources = argv[i] + 10;
        } else if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc) {
            a->plugin_dir = argv[++i];
        } else if (strncmp(argv[i], "--plugin-dir=", 13) == 0) {
            a->plugin_dir = argv[i] + 13;
        } else if (explain && strcmp(argv[i], "--dot") == 0) {
            a->dot = 1;
        } else if (!explain && strcmp(argv[i], "--precheck") == 0) {
            a->precheck = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--sources") || !strcmp(argv[i], "--plugin-dir")) {
            fprintf(stderr, "sluice %s: %s needs a value\n", argv[0], argv[i]);
            return -1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sluice %s: unknown option %s\n", argv[0], argv[i]);
            return -1;
        } else if (!a->file) {
            a->file = argv[i];
        } else {
            fprintf(stderr, "sluice %s: one task file only (got %s and %s)\n", argv[0], a->file, argv[i]);
            return -1;
        }
    }
    if (!a->file) {
        fprintf(stderr, "sluice %s: which task file? (sluice %s FILE)\n", argv[0], argv[0]);
        return -1;
    }
    if (a->precheck && !a->sources) {
        fprintf(stderr, "sluice %s: --precheck reads the sources: it needs --sources FILE\n", argv[0]);
        return -1;
    }
    return 0;
}

static void print_diags(const sl_diags *d, const char *file)
{
    for (size_t i = 0; i < d->n; i++) {
        const sl_diag *g = &d->v[i];
        fprintf(stderr, "%s%s: %s (code %d)\n", g->severity == SL_DIAG_WARNING ? "warning: " : "",
                g->path[0] ? g->path : "/", g->msg, g->code);
    }
    size_t ne = sl_diags_errors(d);
    if (ne)
        fprintf(stderr, "%s: %zu error%s\n", file, ne, ne == 1 ? "" : "s");
}

/* Everything the offline commands share: read, load plugins and sources, compile. Returns the
 * exit code (0 = plan compiled). */
static int compile_file(const args *a, sl_task_plan **plan, sl_registry **reg)
{
    size_t len = 0, slen = 0, nsrc = 0;
    char *text = slurp(a->file, &len);
    if (!text)
        return 2;
    sl_source_def *defs = NULL;
    sl_diags d = {0};
    if (a->sources) {
        char *st = slurp(a->sources, &slen);
        if (!st) {
            free(text);
            return 2;
        }
        int rc = sl_source_defs_parse(st, slen, &defs, &nsrc, &d);
        free(st);
        if (rc < 0) {
            fprintf(stderr, "sluice: %s is not a valid sources file:\n", a->sources);
            print_diags(&d, a->sources);
            sl_diags_free(&d);
            free(text);
            return 2;
        }
    }
    const char *dir = a->plugin_dir ? a->plugin_dir : sl_default_plugin_dir();
    sl_error err = {0};
    if (sl_registry_new(reg) < 0) {
        fprintf(stderr, "sluice: out of memory\n");
        free(text);
        sl_source_defs_free(defs, nsrc);
        return 2;
    }
    if (sl_registry_load_dir(*reg, dir, &err) < 0)
        fprintf(stderr, "sluice: warning: loading plugins from %s: %s\n", dir, err.msg);
    char *copy = strdup(strcmp(a->file, "-") == 0 ? "." : a->file);
    sl_compile_opts o = {
        .registry = *reg, .plugin_dir = dir, .sources = defs, .nsources = nsrc,
        .check_sources = a->sources != NULL, .base_dir = copy ? dirname(copy) : NULL,
        .ncpu = ncpu(),
    };
    int rc = sl_task_compile(text, len, &o, plan, &d);
    print_diags(&d, a->file);
    sl_diags_free(&d);
    free(copy);
    free(text);
    sl_source_defs_free(defs, nsrc);
    if (rc == SL_ENOMEM) {
        fprintf(stderr, "sluice: out of memory\n");
        return 2;
    }
    return rc < 0 ? 1 : 0;
}

int sl__cli_compile(const char *file, const char *sources, const char *plugin_dir,
                    sl_task_plan **plan, sl_registry **reg)
{
    args a = { .file = file, .sources = sources, .plugin_dir = plugin_dir };
    return compile_file(&a, plan, reg);
}

static void print_chain(const sl_pipeline_spec *p)
{
    for (size_t i = 0; i < p->nstages; i++)
        printf("%s%s", i ? " -> " : "", p->stages[i].plugin);
}

/* Which DDL of the binlog the task follows and what happens to the rest (docs/tasks.md, "DDL in
 * the incremental phase"): said by check-task because no server is needed to know it. */
static void print_ddl(const sl_task_plan *plan)
{
    int incr = 0, merged = 0;
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_subtask_plan *s = &plan->subtasks[i];
        merged |= s->merges;
        for (size_t j = 0; j < s->nphases; j++)
            incr |= strcmp(s->phase_names[j], "incremental") == 0;
    }
    if (!incr)
        return;
    const char *mode = json_string_value(json_object_get(plan->task, "shard_mode"));
    if (mode && !*mode)
        mode = NULL;
    printf("  DDL of selected tables: CREATE/ALTER/RENAME/DROP TABLE, CREATE/DROP INDEX and DROP "
           "DATABASE are applied to the target and followed by the schema tracker; TRUNCATE and "
           "CREATE/ALTER DATABASE are applied only; views, triggers, routines, events and account "
           "statements are dropped%s\n", !merged ? "" :
           !mode ? "; DDL of a shard-merged table pauses the subtask (no shard_mode)" :
           !strcmp(mode, "pessimistic") ? "; DDL of a shard-merged table waits until every shard "
                                          "has run it, then runs once (shard_mode pessimistic)" :
           "; DDL of a shard-merged table changes the target table to the join of the shards' "
           "structures (shard_mode optimistic)");
    if (mode && strcmp(mode, "optimistic") &&
        json_is_true(json_object_get(plan->task, "strict_optimistic_shard_mode")))
        printf("  strict_optimistic_shard_mode: ignored (shard_mode is %s)\n", mode);
    if (json_is_false(json_object_get(plan->task, "enhance_online_schema_change")))
        printf("  online schema changes (gh-ost, pt-osc): not followed "
               "(enhance_online_schema_change false): their tables are ordinary tables, copied "
               "when a rule selects them, and their cut-over RENAME is applied as it is\n");
    else
        printf("  online schema changes (gh-ost, pt-osc): followed: their ghost and trash tables "
               "are not copied, the ALTER of the ghost table is applied to the real table at the "
               "cut-over RENAME\n");
}

static int cmd_check(int argc, char **argv)
{
    args a;
    if (parse_args(argc, argv, 0, &a) < 0)
        return 2;
    sl_task_plan *plan = NULL;
    sl_registry *reg = NULL;
    int rc = compile_file(&a, &plan, &reg);
    if (rc == 0) {
        printf("task %s is valid\n", plan->name);
        for (size_t i = 0; i < plan->nsubtasks; i++) {
            const sl_subtask_plan *s = &plan->subtasks[i];
            printf("  source %s: mode %s, %zu table rule%s%s, ", s->source_name, plan->task_mode,
                   s->nrules, s->nrules == 1 ? "" : "s", s->merges ? " (shard merge)" : "");
            for (size_t j = 0; j < s->nphases; j++) {
                printf("%s%s: ", j ? "; " : "", s->phase_names[j]);
                print_chain(s->phases[j]);
            }
            printf("\n");
        }
        print_ddl(plan);
        if (a.precheck)
            rc = sl_cli_precheck(plan);
    }
    sl_task_plan_free(plan);
    sl_registry_free(reg);
    return rc;
}

/* Resolved options of a stage (defaults applied, secrets masked) as a JSON object. */
static json_t *resolved(const sl_registry *reg, const sl_stage_spec *st)
{
    const sl_plugin_descriptor *d = sl_registry_find(reg, st->plugin);
    char *s = d ? sl_options_resolved_json(d, st->options_json) : NULL;
    json_t *o = json_loads(s ? s : st->options_json, 0, NULL);
    free(s);
    return o;
}

static void dot_escape(const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
}

static void explain_text(const sl_task_plan *plan, const sl_registry *reg)
{
    printf("task %s: mode %s, %zu source%s\n", plan->name, plan->task_mode, plan->nsubtasks,
           plan->nsubtasks == 1 ? "" : "s");
    const char *ms = json_string_value(json_object_get(plan->task, "meta_schema"));
    printf("meta_schema: %s\n", ms ? ms : "dm_meta");
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_subtask_plan *s = &plan->subtasks[i];
        printf("\nsource %s%s\n", s->source_name, s->source_known ? "" :
               " (connection unknown: pass --sources to fill source_*)");
        for (size_t j = 0; j < s->nphases; j++) {
            const sl_pipeline_spec *p = s->phases[j];
            printf("  phase %zu: %s (%s)%s\n", j + 1, s->phase_names[j], p->name,
                   j ? ", starting from the position the full phase recorded" : "");
            for (size_t k = 0; k < p->nstages; k++) {
                const sl_stage_spec *st = &p->stages[k];
                printf("    [%s] %s\n", st->id, st->plugin);
                json_t *o = resolved(reg, st);
                const char *key;
                json_t *v;
                json_object_foreach(o, key, v) {
                    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                    printf("        %-20s %s\n", key, txt ? txt : "?");
                    free(txt);
                }
                json_decref(o);
            }
            printf("    edges:");
            for (size_t e = 0; e < p->nedges; e++)
                printf("%s %s -> %s", e ? "," : "", p->stages[p->edges[e].from].id,
                       p->stages[p->edges[e].to].id);
            printf("\n");
        }
    }
}

static void explain_dot(const sl_task_plan *plan)
{
    printf("digraph \"");
    dot_escape(plan->name);
    printf("\" {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_subtask_plan *s = &plan->subtasks[i];
        for (size_t j = 0; j < s->nphases; j++) {
            const sl_pipeline_spec *p = s->phases[j];
            printf("  subgraph \"cluster_s%zu_p%zu\" {\n    label=\"", i, j);
            dot_escape(s->source_name);
            printf(" / %s\";\n", s->phase_names[j]);
            for (size_t k = 0; k < p->nstages; k++) {
                printf("    \"s%zu_p%zu_%s\" [label=\"%s\\n", i, j, p->stages[k].id, p->stages[k].id);
                dot_escape(p->stages[k].plugin);
                printf("\"];\n");
            }
            for (size_t e = 0; e < p->nedges; e++)
                printf("    \"s%zu_p%zu_%s\" -> \"s%zu_p%zu_%s\";\n", i, j,
                       p->stages[p->edges[e].from].id, i, j, p->stages[p->edges[e].to].id);
            printf("  }\n");
            if (j > 0 && s->phases[j - 1]->nstages && p->nstages)
                printf("  \"s%zu_p%zu_%s\" -> \"s%zu_p%zu_%s\" [style=dashed, label=\"then\"];\n", i,
                       j - 1, s->phases[j - 1]->stages[s->phases[j - 1]->nstages - 1].id, i, j,
                       p->stages[0].id);
        }
    }
    printf("}\n");
}

static int cmd_explain(int argc, char **argv)
{
    args a;
    if (parse_args(argc, argv, 1, &a) < 0)
        return 2;
    sl_task_plan *plan = NULL;
    sl_registry *reg = NULL;
    int rc = compile_file(&a, &plan, &reg);
    if (rc == 0) {
        if (a.dot)
            explain_dot(plan);
        else
            explain_text(plan, reg);
    }
    sl_task_plan_free(plan);
    sl_registry_free(reg);
    return rc;
}

int main(int argc, char **argv)
{
    /* The client's global option may come before the command (`sluice --server URL task list`,
     * as --help lists it among the options): move it after the command's own words. */
    const char *server_opt[2] = { NULL, NULL };
    int skip = 0;
    if (argc >= 2 && !strcmp(argv[1], "--server")) {
        if (argc < 3 || argv[2][0] == '-') {
            fprintf(stderr, "sluice: --server needs a value (http://HOST:PORT)\n");
            return 2;
        }
        server_opt[0] = argv[1];
        server_opt[1] = argv[2];
        skip = 2;
    } else if (argc >= 2 && !strncmp(argv[1], "--server=", 9)) {
        server_opt[0] = argv[1];
        skip = 1;
    }
    if (skip) {
        const char *c = argc > 1 + skip ? argv[1 + skip] : "";
        if (strcmp(c, "source") && strcmp(c, "task") && strcmp(c, "cluster")) {
            fprintf(stderr, "sluice: --server goes with the client commands (source, task, "
                    "cluster), not \"%s\" (sluice --help)\n", c);
            return 2;
        }
        if (!sl_cli_client_main) {
            fprintf(stderr, "sluice: client commands are not built\n");
            return 2;
        }
        /* argv[1 + skip ..], then the option: the client reads options anywhere after KIND */
        int n = argc - 1 - skip;
        char **v = calloc((size_t)n + 3, sizeof *v);
        if (!v) {
            fprintf(stderr, "sluice: out of memory\n");
            return 2;
        }
        memcpy(v, argv + 1 + skip, (size_t)n * sizeof *v);
        v[n++] = (char *)server_opt[0];
        if (server_opt[1])
            v[n++] = (char *)server_opt[1];
        int rc = sl_cli_client_main(n, v);
        free(v);
        return rc;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sluice %s\n", SLUICE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "check-task") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "explain") == 0)
        return cmd_explain(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return sl_cli_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "source") == 0 || strcmp(cmd, "task") == 0 || strcmp(cmd, "cluster") == 0) {
        if (!sl_cli_client_main) {
            fprintf(stderr, "sluice: client commands are not built\n");
            return 2;
        }
        return sl_cli_client_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "sluice: unknown command \"%s\" (sluice --help)\n", cmd);
    return 2;
}
