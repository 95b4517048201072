/*
 * verify.c - `sluice verify`: the offline comparison of a task's source and target tables. The
 * task is compiled as check-task compiles it, so the tables, their routing (shard merge
 * included), filters and Lua scripts are the compiler's; the comparison itself is
 * plugins/common/verify.c, run on scheduler threads, over the tables verify_task.c lists.
 */
#include "cli.h"
#include "verify.h"
#include "sluice/compiler.h"
#include "sluice/match.h"
#include "sluice/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

typedef struct vargs {
    const char *file, *sources, *plugin_dir, *repair;
    unsigned    threads, retries, retry_ms;
    size_t      chunk_rows;
    double      cps;
} vargs;

static int parse(int argc, char **argv, vargs *a)
{
    memset(a, 0, sizeof *a);
    a->threads = 2;
    a->retry_ms = 1000;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--sources") == 0 && val)
            a->sources = argv[++i];
        else if (strcmp(o, "--plugin-dir") == 0 && val)
            a->plugin_dir = argv[++i];
        else if (strcmp(o, "--repair-sql") == 0 && val)
            a->repair = argv[++i];
        else if (strcmp(o, "--threads") == 0 && val) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 1 || n > MAX_THREADS) {
                fprintf(stderr, "sluice verify: --threads must be 1..%d\n", MAX_THREADS);
                return -1;
            }
            a->threads = (unsigned)n;
        } else if (strcmp(o, "--chunk-rows") == 0 && val) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 1 || n > 10000000) {
                fprintf(stderr, "sluice verify: --chunk-rows must be 1..10000000\n");
                return -1;
            }
            a->chunk_rows = (size_t)n;
        } else if ((strcmp(o, "--retries") == 0 || strcmp(o, "--retry-delay-ms") == 0) && val) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 0 || n > 3600000) {
                fprintf(stderr, "sluice verify: %s must be 0..3600000\n", o);
                return -1;
            }
            *(strcmp(o, "--retries") == 0 ? &a->retries : &a->retry_ms) = (unsigned)n;
        } else if (strcmp(o, "--chunks-per-second") == 0 && val) {
            char *end;
            a->cps = strtod(argv[++i], &end);
            if (*end || a->cps < 0) {
                fprintf(stderr, "sluice verify: --chunks-per-second must be a number >= 0\n");
                return -1;
            }
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "sluice verify: unknown option or missing value: %s\n", o);
            return -1;
        } else if (!a->file)
            a->file = o;
        else {
            fprintf(stderr, "sluice verify: one task file only\n");
            return -1;
        }
    }
    if (!a->file || !a->sources) {
        fprintf(stderr, "sluice verify: usage: sluice verify TASK --sources FILE [options]\n");
        return -1;
    }
    return 0;
}

static void work(void *arg)
{
    sl_verify_work(arg);
}

int sl_cli_verify(int argc, char **argv)
{
    vargs a;
    if (parse(argc, argv, &a) < 0)
        return 2;
    sl_task_plan *plan = NULL;
    sl_registry *reg = NULL;
    int rc = sl__cli_compile(a.file, a.sources, a.plugin_dir, &plan, &reg);
    if (rc != 0) {
        sl_task_plan_free(plan);
        sl_registry_free(reg);
        return rc;
    }
    sl_verify_task vt;
    FILE *repair = NULL;
    sl_scheduler *sched = NULL;
    sl_error err = {0};
    int irc = sl_verify_task_init(&vt, plan->nsubtasks);
    rc = 2;
    for (size_t i = 0; irc == 0 && i < plan->nsubtasks; i++) {
        const sl_subtask_plan *sp = &plan->subtasks[i];
        const char *lua = NULL;
        /* a Lua hook may sit in any phase (the incremental one of task_mode all) */
        for (size_t ph = 0; ph < sp->nphases; ph++)
            for (size_t k = 0; k < sp->phases[ph]->nstages; k++)
                if (strcmp(sp->phases[ph]->stages[k].plugin, "lua-hook") == 0)
                    lua = sp->phases[ph]->stages[k].options_json;
        irc = sl_verify_task_add_source(&vt, sp->source_name, sp->phases[0]->stages[0].options_json,
                                        lua, &err);
    }
    if (irc == 0)
        irc = sl_verify_task_collect(&vt, &err);
    if (irc < 0) {
        fprintf(stderr, "sluice verify: %s\n", err.msg[0] ? err.msg : sl_strerror(irc));
        goto out;
    }
    sl_verify_table *tables = vt.tables;
    size_t ntables = vt.ntables;
    if (a.repair && !(repair = fopen(a.repair, "w"))) {
        perror(a.repair);
        goto out;
    }
    for (size_t i = 0; i < ntables; i++)
        if (tables[i].nsrc > 1)
            printf("shard merge: `%s`.`%s` is compared with the union of %zu source tables\n",
                   tables[i].tschema, tables[i].ttable, tables[i].nsrc);
    sl_verify v;
    sl_verify_opts vo = { .target = &vt.target, .chunk_rows = a.chunk_rows,
                          .chunks_per_second = a.cps, .retries = a.retries,
                          .retry_ms = a.retry_ms, .report = stdout, .repair = repair };
    if (sl_verify_init(&v, &vo, tables, ntables) < 0 || sl_scheduler_new(NULL, &sched) < 0)
        goto out;
    sl_thread *th[MAX_THREADS];
    unsigned nth = 0;
    for (; nth < a.threads; nth++)
        if (sl_thread_spawn(sched, "verify", work, &v, &th[nth]) < 0)
            break;
    if (nth == 0)
        sl_verify_work(&v);
    for (unsigned i = 0; i < nth; i++)
        sl_thread_join(th[i]);
    const sl_verify_stats *s = &v.stats;
    printf("verified %llu tables (%llu excluded), %llu source rows in %llu chunks (%llu differing): "
           "%llu missing, %llu extra, %llu different\n", s->tables, s->excluded, s->rows, s->chunks,
           s->chunks_differing, s->missing, s->extra, s->different);
    if (v.rc < 0) {
        fprintf(stderr, "sluice verify: %s\n", v.err.msg);
        rc = 2;
    } else
        rc = s->missing + s->extra + s->different ? 1 : 0;
    sl_verify_destroy(&v);
out:
    if (repair && fclose(repair) != 0)
        rc = 2;
    sl_scheduler_free(sched);
    sl_verify_task_free(&vt);
    sl_task_plan_free(plan);
    sl_registry_free(reg);
    return rc;
}
