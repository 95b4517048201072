/*
 * status.c - a subtask's status as DM shows it (SubTaskStatus: stage, unit, error_msg,
 * load_status, sync_status, dump_status), filled from the status JSON of the pipeline's stages
 * (the built-in plugins by name), plus sluice's "stages": every stage with its metrics.
 */
#include "worker_int.h"
#include "shard.h"

#include <string.h>
#include <time.h>

/* ---- status ------------------------------------------------------------------------------------ */

json_t *sl__stage_status(json_t *ps, const char *plugin)
{
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(ps, "stages"), i, st)
        if (!strcmp(json_string_value(json_object_get(st, "plugin")) ? json_string_value(json_object_get(st, "plugin")) : "", plugin))
            return json_object_get(st, "status");
    return NULL;
}

/* Copy the members of src that dst has (keeping dst's defaults for the rest), plus extras. */
static void overlay(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
        if (strcmp(k, "unit"))
            json_object_set(dst, k, v);
}

static json_t *load_defaults(void)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:I}", "finished_bytes", (json_int_t)0, "total_bytes",
                     (json_int_t)0, "progress", "0.00 %", "meta_binlog", "", "meta_binlog_gtid", "",
                     "bps", (json_int_t)0);
}

static json_t *sync_defaults(void)
{
    return json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:[],s:[],s:b,s:s,s:I,s:I,s:I}",
                     "total_events", (json_int_t)0, "total_tps", (json_int_t)0,
                     "recent_tps", (json_int_t)0, "master_binlog", "", "master_binlog_gtid", "",
                     "syncer_binlog", "", "syncer_binlog_gtid", "", "blocking_ddls",
                     "unresolved_groups", "synced", 0, "binlog_type", "remote",
                     "seconds_behind_master", (json_int_t)0, "rows_not_found", (json_int_t)0,
                     "target_warnings", (json_int_t)0);
}

static json_t *dump_defaults(void)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:I,s:s}", "total_tables", (json_int_t)0,
                     "completed_tables", 0.0, "finished_bytes", 0.0, "finished_rows", 0.0,
                     "estimate_total_rows", 0.0, "bps", (json_int_t)0, "progress", "0.00 %");
}

/*
 * sluice's extension of SubTaskStatus: every stage of the current (or last) phase's pipeline as
 * {"id", "plugin", "metrics", "status"}, whatever its plugin. DM's load/sync/dump_status above
 * are filled from the built-in plugins by name; this is where the other stages (route,
 * event-filter, lua-hook, a custom plugin) show their metrics and status. [] before the first
 * start.
 */
static json_t *stages_view(json_t *ps)
{
    json_t *out = json_array(), *st;
    size_t i;
    json_array_foreach(json_object_get(ps, "stages"), i, st) {
        json_t *m = json_object_get(st, "metrics"), *v = json_object_get(st, "status");
        const char *id = json_string_value(json_object_get(st, "id"));
        const char *plugin = json_string_value(json_object_get(st, "plugin"));
        json_t *e = json_pack("{s:s,s:s}", "id", id ? id : "", "plugin", plugin ? plugin : "");
        if (!e)
            continue;
        json_object_set_new(e, "metrics", json_is_object(m) ? json_incref(m) : json_object());
        json_object_set_new(e, "status", json_is_object(v) ? json_incref(v) : json_object());
        json_t *q = json_object_get(st, "queue_batches");
        if (json_is_integer(q))   /* batches waiting in the stage's input queue */
            json_object_set(e, "queue_batches", q);
        json_array_append_new(out, e);
    }
    return out;
}

json_t *sl__subtask_status_locked(sl_subtask *s)
{
    json_t *ps = NULL;
    if (s->pipe) {
        char *t = sl_pipeline_status_json(s->pipe);
        ps = t ? json_loads(t, 0, NULL) : NULL;
        free(t);
    } else if (s->last) {
        ps = json_incref(s->last);
    }
    const sl_subtask_plan *sp = &s->plan->subtasks[s->index];
    const char *phase = sp->nphases ? sp->phase_names[s->phase] : "";
    const char *mode = s->plan->task_mode;
    json_t *load = load_defaults(), *sync = sync_defaults(), *dump = NULL, *x;
    if (s->load_done)
        overlay(load, s->load_done);
    if (s->dump_done)
        overlay(dump = dump_defaults(), s->dump_done);
    const char *unit = "Sync";
    if (phase && !strcmp(phase, "full")) {
        json_t *d = sl__stage_status(ps, "mysql-dump"), *l = sl__stage_status(ps, "loader");
        if (d)
            overlay(dump ? dump : (dump = dump_defaults()), d);
        if (l)
            overlay(load, l);
        /* dump and load run together; the unit is Dump until every table is dumped */
        json_int_t total = json_integer_value(json_object_get(dump, "total_tables"));
        double done = json_number_value(json_object_get(dump, "completed_tables"));
        unit = (mode && !strcmp(mode, "dump")) || (total == 0 || done < (double)total) ? "Dump" : "Load";
        if (mode && !strcmp(mode, "load"))
            unit = "Load";
        /* Once every table is dumped the load's total is what the dump wrote, even while the
         * last chunks are still on their way to the loader (it learns the dump's total from the
         * manifest, at most once a second): without this the Load progress falls back for a
         * moment as those chunks arrive. */
        double dumped = json_number_value(json_object_get(dump, "finished_bytes"));
        double ltotal = json_number_value(json_object_get(load, "total_bytes"));
        double ldone = json_number_value(json_object_get(load, "finished_bytes"));
        const char *lprog = json_string_value(json_object_get(load, "progress"));
        if (!strcmp(unit, "Load") && l && dumped > ltotal && !(lprog && !strcmp(lprog, "100.00 %"))) {
            char pct[32];
            double v = 100.0 * ldone / dumped;
            snprintf(pct, sizeof pct, "%.2f %%", v > 99.99 ? 99.99 : v);
            json_object_set_new(load, "total_bytes", json_integer((json_int_t)dumped));
            json_object_set_new(load, "progress", json_string(pct));
        }
    }
    /* The lag, where it is known: the sink's (of what is applied), else the reader's (of what
     * is read, before the sink has applied anything); neither says a number before its first
     * event. */
    json_t *lagv = json_object_get(sl__stage_status(ps, "mysql-sink"), "seconds_behind_master");
    if (!json_is_integer(lagv))
        lagv = json_object_get(sl__stage_status(ps, "binlog-reader"), "seconds_behind_master");
    int lag_known = json_is_integer(lagv);
    json_int_t lag = lag_known ? json_integer_value(lagv) : 0;
    if (!s->pipe && s->stage == SL_STAGE_PAUSED && lag_known) {
        /* Paused: nothing is applied, so the target falls behind by the time since the lag was
         * last known (at most: an idle source would have nothing to send). The lag alert fires
         * as for a running subtask that stalls. */
        time_t now = time(NULL);
        if (s->last_at && now > s->last_at)
            lag += (json_int_t)(now - s->last_at);
    } else if (!s->pipe) {
        lag_known = 0;     /* Stopped, New, Finished: nothing replicates, by the operator's will */
    }
    /* A source silent past its heartbeats (gone, frozen, cut off): whatever the sink says, the
     * target is behind by at least that long, and not synced. */
    json_t *silentv = json_object_get(sl__stage_status(ps, "binlog-reader"), "source_silent_seconds");
    int silent = s->pipe && json_is_integer(silentv);
    if (silent) {
        if (!lag_known || json_integer_value(silentv) > lag)
            lag = json_integer_value(silentv);
        lag_known = 1;
    }
    if ((x = sl__stage_status(ps, "binlog-reader")))
        overlay(sync, x);
    if ((x = sl__stage_status(ps, "mysql-sink")))
        overlay(sync, x);
    /* DM's field is always a number (0 while unknown); sluice's lag_known says whether it is
     * one (the metric sluice_replication_lag_seconds has no sample while it is not) */
    json_object_set_new(sync, "seconds_behind_master", json_integer(lag_known ? lag : 0));
    json_object_set_new(sync, "lag_known", json_boolean(lag_known));
    if (silent)
        json_object_set_new(sync, "synced", json_false());
    /* the events of the subtask's earlier runs in this process too: a counter that a stop and
     * start (or a PUT) does not take back */
    json_object_set_new(sync, "total_events", json_integer(s->events_base + json_integer_value(
                                                  json_object_get(sync, "total_events"))));
    /* sluice's extension: UPDATE and DELETE rows that found no row on the target (it drifted
     * from the source), counted the same way */
    json_object_set_new(sync, "rows_not_found", json_integer(s->not_found_base + json_integer_value(
                                                    json_object_get(sync, "rows_not_found"))));
    /* and the values the target changed (a statement's warnings: it differs from the source) */
    json_object_set_new(sync, "target_warnings", json_integer(s->warnings_base + json_integer_value(
                                                     json_object_get(sync, "target_warnings"))));
    const char *err = s->error_msg;
    const char *perr = json_string_value(json_object_get(ps, "error_msg"));
    if (!err && perr && s->stage == SL_STAGE_PAUSED)
        err = perr;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", s->task, "source_name",
                          s->source, "worker_name", s->w->name, "stage",
                          sl_stage_name(s->stage), "unit", unit, "unresolved_ddl_lock_id", "");
    if (err)
        json_object_set_new(o, "error_msg", json_string(err));
    json_object_set_new(o, "load_status", load);
    json_object_set_new(o, "sync_status", sync);
    if (dump)
        json_object_set_new(o, "dump_status", dump);
    sl__shard_status(s->w, s->task, s->source, o);
    json_object_set_new(o, "stages", stages_view(ps));
    /* sluice's extension: a stop was asked and answered, but a stage of the stopped run has not
     * returned yet (it keeps the subtask from starting again) */
    if (s->stopping)
        json_object_set_new(o, "stopping", json_true());
    /* sluice's extension: the automatic resume (DM's worker retries, shown here) */
    char due[32] = "";
    if (s->next_retry) {
        struct tm tm;
        gmtime_r(&s->next_retry, &tm);
        strftime(due, sizeof due, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_object_set_new(o, "auto_resume", json_pack("{s:s,s:I,s:s,s:I,s:I}",
                        "error_class", sl_errclass_name(s->err_class), "retries",
                        (json_int_t)s->retries, "next_retry_at", due, "errors",
                        (json_int_t)s->errors, "resumes", (json_int_t)s->resumes));
    json_decref(ps);
    return o;
}
