/*
 * precheck.c - `sluice check-task --precheck`: DM's shard-merge prechecks of a task
 * (plugins/common/precheck.h) on the sources the --sources file describes, as a start on the
 * server runs them. Another task writing the same tables is the server's to see (POST
 * /tasks/check): there is no other task here.
 */
#include "cli.h"
#include "precheck.h"
#include "sluice/compiler.h"

#include <stdio.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int sl_cli_precheck(const sl_task_plan *plan)
{
    const char *tm = plan->task_mode;
    if (strcmp(tm, "all") && strcmp(tm, "full") && strcmp(tm, "load")) {
        printf("precheck: task_mode %s loads no dump: no shard precheck applies\n", tm);
        return 0;
    }
    sl_verify_task vt;
    sl_error err = {0};
    int rc = sl_verify_task_init(&vt, plan->nsubtasks);
    for (size_t i = 0; rc == 0 && i < plan->nsubtasks; i++) {
        const sl_subtask_plan *sp = &plan->subtasks[i];
        rc = sl_verify_task_add_source(&vt, sp->source_name,
                                       sp->phases[0]->stages[0].options_json, NULL, &err);
    }
    if (rc == 0)
        rc = sl_verify_task_collect(&vt, &err);
    const json_t *def = plan->task;
    const char *ms = jstr(def, "meta_schema");
    int started = rc == 0 ? sl_precheck_started(&vt.target, *ms ? ms : "dm_meta", plan->name, &err)
                          : 0;
    if (started < 0) {
        fprintf(stderr, "warning: precheck: %s; checked as a task that has not begun\n", err.msg);
        started = 0;
    }
    json_t *found = json_array();
    if (rc == 0 && started) {
        printf("precheck: task %s has begun on its target (its checkpoint tables hold rows): the "
               "shard prechecks apply to a task that has not, as in DM\n", plan->name);
    } else if (rc == 0) {
        rc = found ? sl_precheck_shards(&vt, jstr(def, "shard_mode"),
                                        json_object_get(def, "ignore_checking_items"), found, &err)
                   : SL_ENOMEM;
    }
    int errors = 0;
    size_t i;
    json_t *x;
    json_array_foreach(found, i, x) {
        int e = json_is_true(json_object_get(x, "error"));
        errors += e;
        fprintf(stderr, "%s/table_migrate_rule: precheck %s: %s (code 26005)\n",
                e ? "" : "warning: ", jstr(x, "item"), jstr(x, "msg"));
    }
    json_decref(found);
    sl_verify_task_free(&vt);
    if (rc < 0) {
        fprintf(stderr, "sluice check-task: precheck: %s\n", err.msg[0] ? err.msg : sl_strerror(rc));
        return 1;
    }
    if (errors) {
        fprintf(stderr, "precheck: %d error%s\n", errors, errors == 1 ? "" : "s");
        return 1;
    }
    if (!started)
        printf("precheck: passed\n");
    return 0;
}
