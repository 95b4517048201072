/*
 * task_precheck.c - what the server checks on the sources and the target before a task copies
 * anything: DM's shard-merge prechecks (plugins/common/precheck.h), and whether another task of
 * this server writes a target table of it. POST /tasks/check reports them; a start refuses on
 * them (tasks.c). What they need is copied out under the server's lock and checked without it:
 * they connect to every source of the tasks involved.
 */
#include "internal.h"
#include "precheck.h"
#include "sluice/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How many shared target tables a message names. */
#define SHARED_NAMED 5

typedef struct other_task {
    char          *name;
    char          *stages;   /* its subtasks' stages, "Running" or "Running, Paused" */
    sl_verify_task vt;
} other_task;

struct sl__precheck {
    int            mode;     /* SL__PRECHECK_CHECK or _START */
    char          *task, *meta_schema, *shard_mode;
    json_t        *ignore;   /* ignore_checking_items (a copy) or NULL */
    int            loads;    /* the task loads a dump (task_mode all, full, load) */
    sl_verify_task vt;
    other_task    *others;
    size_t         nothers;
};

/* The sources of plan added to vt (rules and connections of each source's first stage). */
static int add_sources(sl_verify_task *vt, const sl_task_plan *plan)
{
    sl_error err = { 0 };
    if (sl_verify_task_init(vt, plan->nsubtasks) < 0)
        return SL_ENOMEM;
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_subtask_plan *sp = &plan->subtasks[i];
        if (!sp->nphases || !sp->phases[0]->nstages)
            return SL_EINVAL;        /* a stored task that no longer compiles */
        int rc = sl_verify_task_add_source(vt, sp->source_name,
                                           sp->phases[0]->stages[0].options_json, NULL, &err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* 1 if the two tasks' target_config name the same server (the tables are compared later). */
static int same_target(const json_t *a, const json_t *b)
{
    const json_t *x = json_object_get(a, "target_config"), *y = json_object_get(b, "target_config");
    return !strcasecmp(jstr(x, "host"), jstr(y, "host")) &&
           json_integer_value(json_object_get(x, "port")) ==
           json_integer_value(json_object_get(y, "port"));
}

/* The stages of t's subtasks, distinct, joined by ", "; *active set when one writes now or will
 * by itself (runs, or waits for an automatic resume). NULL when out of memory. */
static char *stages_of(sl_api_task *t, int *active)
{
    int seen[SL_STAGE_FINISHED + 1] = { 0 };
    *active = 0;
    for (size_t i = 0; i < t->nsubs; i++) {
        sl_stage s = sl_subtask_stage(t->subs[i]);
        if (s <= SL_STAGE_FINISHED)
            seen[s] = 1;
        *active |= sl_subtask_writing(t->subs[i]);
    }
    char buf[128] = "";
    for (int s = 0; s <= SL_STAGE_FINISHED; s++)
        if (seen[s]) {
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "%s%s", l ? ", " : "", sl_stage_name((sl_stage)s));
        }
    return strdup(buf);
}

char *sl__precheck_writers(sl_api *a, const sl_task_plan *plan)
{
    size_t len = 0;
    char *out = strdup("");
    for (size_t i = 0; out && i < a->ntasks; i++) {
        sl_api_task *t = a->tasks[i];
        int active = 0;
        for (size_t j = 0; j < t->nsubs; j++)
            active |= sl_subtask_writing(t->subs[j]);
        if (!active || !strcmp(t->name, plan->name) || !same_target(t->def, plan->task))
            continue;
        size_t n = strlen(t->name);
        char *p = realloc(out, len + n + 2);
        if (!p) {
            free(out);
            return NULL;
        }
        out = p;
        len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", t->name);
    }
    return out;
}

void sl__precheck_free(sl__precheck *p)
{
    if (!p)
        return;
    free(p->task);
    free(p->meta_schema);
    free(p->shard_mode);
    json_decref(p->ignore);
    sl_verify_task_free(&p->vt);
    for (size_t i = 0; i < p->nothers; i++) {
        free(p->others[i].name);
        free(p->others[i].stages);
        sl_verify_task_free(&p->others[i].vt);
    }
    free(p->others);
    free(p);
}

sl__precheck *sl__precheck_prepare(sl_api *a, const sl_task_plan *plan, int mode)
{
    if (a->offline || !plan)
        return NULL;
    sl__precheck *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    const json_t *def = plan->task;
    const char *ms = jstr(def, "meta_schema"), *sm = jstr(def, "shard_mode");
    p->mode = mode;
    p->task = strdup(plan->name);
    p->meta_schema = strdup(*ms ? ms : "dm_meta");
    p->shard_mode = strdup(sm);
    p->ignore = json_deep_copy(json_object_get(def, "ignore_checking_items"));
    p->loads = !strcmp(plan->task_mode, "all") || !strcmp(plan->task_mode, "full") ||
               !strcmp(plan->task_mode, "load");
    if (!p->task || !p->meta_schema || !p->shard_mode || add_sources(&p->vt, plan) < 0)
        goto fail;
    if (a->ntasks && !(p->others = calloc(a->ntasks, sizeof *p->others)))
        goto fail;
    for (size_t i = 0; i < a->ntasks; i++) {
        sl_api_task *t = a->tasks[i];
        int active = 0;
        if (!strcmp(t->name, plan->name) || !same_target(t->def, def))
            continue;
        char *st = stages_of(t, &active);
        if (!st)
            goto fail;
        /* a start refuses only beside a task that writes now; a check names every one */
        if ((mode == SL__PRECHECK_START && !active) || !t->plan) {
            free(st);
            continue;
        }
        other_task *o = &p->others[p->nothers++];
        o->stages = st;
        if (!(o->name = strdup(t->name)))
            goto fail;
        int rc = add_sources(&o->vt, t->plan);
        if (rc == SL_EINVAL) {          /* it does not compile: it runs nothing */
            sl_verify_task_free(&o->vt);
            free(o->name);
            free(o->stages);
            p->nothers--;
            continue;
        }
        if (rc < 0)
            goto fail;
    }
    return p;
fail:
    sl__precheck_free(p);
    return NULL;
}

static void add_problem(json_t *arr, const char *root, const char *msg, int code)
{
    char path[128];
    snprintf(path, sizeof path, "%s/table_migrate_rule", root);
    json_array_append_new(arr, json_pack("{s:s,s:s,s:i}", "path", path, "msg", msg, "code", code));
}

/* The shard prechecks (fresh: the task starts over, its checkpoints do not count). */
static void run_shards(sl__precheck *p, int fresh, const char *root, json_t *errors,
                       json_t *warnings)
{
    sl_error err = { 0 };
    char msg[SL_ERRMSG_MAX + 128];
    size_t merged = 0;
    for (size_t i = 0; i < p->vt.ntables; i++)
        merged += p->vt.tables[i].nsrc > 1;
    if (!merged)
        return;
    /* DM checks a fresh task only: shards of a task under way may differ for a reason (a shard
     * DDL in progress), and its rows are in */
    int started = fresh ? 0 : sl_precheck_started(&p->vt.target, p->meta_schema, p->task, &err);
    if (started > 0)
        return;
    json_t *found = json_array();
    if (!found)
        return;
    if (started < 0 || sl_precheck_shards(&p->vt, p->shard_mode, p->ignore, found, &err) < 0) {
        /* not a verdict on the task: the start goes on (its own run meets the same server) */
        snprintf(msg, sizeof msg, "precheck: the shard tables could not be checked: %s", err.msg);
        add_problem(warnings, root, msg, DM_ERR_DB);
        sl_log(SL_LOG_WARN, "api", "task %s: %s", p->task, msg);
    }
    size_t i;
    json_t *x;
    json_array_foreach(found, i, x) {
        snprintf(msg, sizeof msg, "precheck %s: %s", jstr(x, "item"), jstr(x, "msg"));
        add_problem(json_is_true(json_object_get(x, "error")) ? errors : warnings, root, msg,
                    DM_ERR_TASK_CHECK);
    }
    json_decref(found);
}

/* Another task of the server that writes a target table of this one (p->vt is collected):
 * a warning of a check, an error of a start (returns 1 then). */
static int run_others(sl__precheck *p, const char *root, json_t *errors, json_t *warnings)
{
    if (!p->nothers)
        return 0;
    sl_error err = { 0 };
    int conflict = 0;
    for (size_t i = 0; i < p->nothers; i++) {
        other_task *o = &p->others[i];
        char msg[2048];
        json_t *shared = json_array();
        if (!shared)
            return conflict;
        if (sl_verify_task_collect(&o->vt, &err) < 0) {
            snprintf(msg, sizeof msg, "precheck: the tables of task %s could not be listed to "
                     "see whether it writes a target table of task %s: %s", o->name, p->task,
                     err.msg);
            add_problem(warnings, root, msg, DM_ERR_DB);
            json_decref(shared);
            continue;
        }
        size_t n = sl_precheck_common_targets(&p->vt, &o->vt, shared, SHARED_NAMED);
        if (n) {
            char *names = NULL;
            size_t len = 0, k;
            json_t *x;
            FILE *f = open_memstream(&names, &len);
            if (f) {
                json_array_foreach(shared, k, x)
                    fprintf(f, "%s%s", k ? ", " : "", json_string_value(x));
                if (n > SHARED_NAMED)
                    fprintf(f, " and %zu more", n - SHARED_NAMED);
                fclose(f);
            }
            snprintf(msg, sizeof msg, "precheck: task %s (%s) writes %s too, on the same target: "
                     "two tasks that write one table coordinate nothing (their loads replace each "
                     "other's rows, each runs its own shard DDL), and DM supports one task per "
                     "sharding group: route the table%s from one task, or %s task %s first",
                     o->name, o->stages, names ? names : "the same tables", n > 1 ? "s" : "",
                     p->mode == SL__PRECHECK_START ? "stop" : "stop or delete", o->name);
            free(names);
            if (p->mode == SL__PRECHECK_START) {
                add_problem(errors, root, msg, DM_ERR_CANNOT_START);
                conflict = 1;
            } else {
                add_problem(warnings, root, msg, DM_ERR_TASK_CHECK);
            }
        }
        json_decref(shared);
    }
    return conflict;
}

int sl__precheck_run(sl__precheck *p, int fresh, const char *root, json_t *errors,
                     json_t *warnings)
{
    if (!p)
        return 0;
    int shards = p->loads && !(sl_precheck_ignored(p->ignore, SL_PRECHECK_AUTO_INCREMENT) &&
                               sl_precheck_ignored(p->ignore, SL_PRECHECK_SHARD_SCHEMA));
    if (!shards && !p->nothers)
        return 0;                       /* nothing to read the sources for */
    sl_error err = { 0 };
    if (sl_verify_task_collect(&p->vt, &err) < 0) {
        char msg[SL_ERRMSG_MAX + 128];
        snprintf(msg, sizeof msg, "precheck: the tables of task %s could not be listed: %s",
                 p->task, err.msg);
        add_problem(warnings, root, msg, DM_ERR_DB);
        sl_log(SL_LOG_WARN, "api", "%s", msg);
        return 0;
    }
    if (shards)
        run_shards(p, fresh, root, errors, warnings);
    return run_others(p, root, errors, warnings);
}
