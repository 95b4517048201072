/*
 * shard.c - the shard DDL coordinator (shard.h): pessimistic shard-DDL locks of a task kept in
 * the metadata store, the group of a lock listed from the sources at its first arrival, and the
 * restart of held subtasks when a lock resolves (they read their held events again from the
 * binlog: nothing of a held shard is buffered, see docs/architecture.md "Shard DDL").
 */
#include "shard.h"
#include "worker_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/event.h"
#include "sluice/log.h"
#include "verify.h"

#define KIND "shard_lock"

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* "`a`.`b`" with backquotes doubled, as DM names a table. */
static char *qname(const char *schema, const char *table)
{
    size_t n = 8 + 2 * (strlen(schema) + strlen(table));
    char *o = malloc(n), *p = o;
    if (!o)
        return NULL;
    const char *parts[2] = { schema, table };
    for (int i = 0; i < 2; i++) {
        if (i)
            *p++ = '.';
        *p++ = '`';
        for (const char *c = parts[i]; *c; c++) {
            if (*c == '`')
                *p++ = '`';
            *p++ = *c;
        }
        *p++ = '`';
    }
    *p = '\0';
    return o;
}

/* The store name of task's record of a target table ("<task>/<target>"), malloc'd; NULL if no
 * memory or no target. */
static char *rec_key(const char *task, const char *target)
{
    char *k = target ? malloc(strlen(task) + strlen(target) + 2) : NULL;
    if (k)
        sprintf(k, "%s/%s", task, target);
    return k;
}

/* The DDL as compared between shards: whitespace runs as one space, no trailing ';'. Two shards
 * that ran the same statement send the same text after routing (route rewrites the names). */
static char *norm_ddl(const char *s)
{
    char *o = malloc(strlen(s) + 1), *p = o;
    if (!o)
        return NULL;
    int sp = 0;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            sp = p != o;
            continue;
        }
        if (sp)
            *p++ = ' ';
        sp = 0;
        *p++ = *s;
    }
    while (p > o && (p[-1] == ';' || p[-1] == ' '))
        p--;
    *p = '\0';
    return o;
}

/* Binlog positions in order: file names of one server sort as their numbers (same stem, fixed
 * width), then offsets. */
static int pos_cmp(const char *fa, unsigned long long pa, const char *fb, unsigned long long pb)
{
    int c = strcmp(fa, fb);
    if (c)
        return c < 0 ? -1 : 1;
    return pa < pb ? -1 : pa > pb;
}

/*
 * Records are read with their store revision and written back only if nobody changed them since
 * (the "__rev" member, never stored): in a cluster the shards of one task run in several worker
 * processes, and w->shard_mu serialises only this one. A write that lost the race is SL_AGAIN;
 * sl__shard_request runs the whole request again on the fresh record.
 */
#define REV "__rev"
#define TRIES 50

static json_t *rec_load(sl_worker *w, const char *kind, const char *key)
{
    char *v = NULL;
    long long rev = 0;
    json_t *j = NULL;
    if (sl_meta_get_rev(w->store, kind, key, &v, &rev, NULL) == 0 && (j = json_loads(v, 0, NULL)))
        json_object_set_new(j, REV, json_integer(rev));
    free(v);
    return j;
}

static int rec_save(sl_worker *w, const char *kind, const char *key, json_t *rec, sl_error *err)
{
    json_t *rv = json_object_get(rec, REV);
    int had = rv != NULL;
    long long rev = had ? (long long)json_integer_value(rv) : 0;
    json_incref(rv);
    json_object_del(rec, REV);
    char *t = json_dumps(rec, JSON_COMPACT);
    if (had)
        json_object_set_new(rec, REV, rv);
    if (!t)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    /* absent when read: create it (another process may have meanwhile); present: update it at
     * the revision read (SQLite has none: one process, serialised by shard_mu) */
    sl_meta_op op = { had ? (rev > 0 ? SL_META_UPDATE : SL_META_PUT) : SL_META_CREATE, kind, key, t };
    sl_error tmp = { 0 };
    int rc = sl_meta_apply_rev(w->store, &op, &rev, 1, &tmp);
    free(t);
    if (rc == SL_ESTATE || rc == SL_EEXIST || (had && rev > 0 && rc == SL_ENOENT))
        return SL_AGAIN;
    if (rc != 0)
        return sl_error_set(err, rc, "%s", tmp.msg);
    return 0;
}

static json_t *lock_load(sl_worker *w, const char *key)
{
    return rec_load(w, KIND, key);
}

static int lock_save(sl_worker *w, const char *key, json_t *lock, sl_error *err)
{
    return rec_save(w, KIND, key, lock, err);
}

static char *reply_of(json_t *r)
{
    char *t = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    return t;
}

/* ---- the group of a lock ---------------------------------------------------------------------- */

/* The task's plan, from any of its subtasks. Call with w->shard_mu held. */
static const sl_task_plan *plan_of(sl_worker *w, const char *task)
{
    for (size_t i = 0; i < w->nsubs; i++)
        if (!strcmp(w->subs[i]->task, task))
            return w->subs[i]->plan;
    return NULL;
}

/*
 * Every source table of the task that its rules route to ts.tt, listed on the sources (the
 * same listing a verification of the task makes: verify_task.c), as [{"source", "schema",
 * "table", "synced": false}]. Tables created after the lock began are added when they arrive.
 */
static json_t *members(const sl_task_plan *plan, const char *ts, const char *tt, sl_error *err)
{
    sl_verify_task vt;
    if (sl_verify_task_init(&vt, plan->nsubtasks) < 0) {
        sl_error_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *out = NULL;
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_subtask_plan *sp = &plan->subtasks[i];
        if (!sp->nphases || !sp->phases[0]->nstages) {
            sl_error_set(err, SL_EINVAL, "source %s has no pipeline", sp->source_name);
            goto out;
        }
        if (sl_verify_task_add_source(&vt, sp->source_name, sp->phases[0]->stages[0].options_json,
                                      NULL, err) < 0)
            goto out;
    }
    if (sl_verify_task_collect(&vt, err) < 0)
        goto out;
    out = json_array();
    for (size_t i = 0; out && i < vt.ntables; i++) {
        sl_verify_table *t = &vt.tables[i];
        if (strcmp(t->tschema, ts) || strcmp(t->ttable, tt))
            continue;
        for (size_t j = 0; j < t->nsrc; j++) {
            int k = sl_verify_task_source(&vt, t->src[j].conn);
            if (k < 0)
                continue;
            json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:b}", "source",
                                                 plan->subtasks[k].source_name, "schema",
                                                 t->src[j].schema, "table", t->src[j].table,
                                                 "synced", 0));
        }
    }
    if (!out)
        sl_error_set(err, SL_ENOMEM, "out of memory");
out:
    sl_verify_task_free(&vt);
    return out;
}

static json_t *find_shard(json_t *lock, const char *source, const char *schema, const char *table)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(lock, "shards"), i, m)
        if (!strcmp(jstr(m, "source"), source) && !strcmp(jstr(m, "schema"), schema) &&
            !strcmp(jstr(m, "table"), table))
            return m;
    return NULL;
}

/* ---- held shards whose lock another process resolves --------------------------------------- */

#define POLL_MS 1000

/* The subtask of task and source, or NULL. Call with w->shard_mu held. */
static sl_subtask *subtask_of(sl_worker *w, const char *task, const char *source)
{
    for (size_t i = 0; i < w->nsubs; i++)
        if (!strcmp(w->subs[i]->task, task) && !strcmp(w->subs[i]->source, source))
            return w->subs[i];
    return NULL;
}

static int waits_of(sl_worker *w, const char *task, const char *source)
{
    size_t i;
    json_t *x;
    json_array_foreach(w->shard_waits, i, x)
        if (!strcmp(jstr(x, "task"), task) && !strcmp(jstr(x, "source"), source))
            return 1;
    return 0;
}

/* Forget the held shards of task/source: its pipeline restarts and asks about them again.
 * Call with w->shard_mu held. */
static void drop_waits(sl_worker *w, const char *task, const char *source)
{
    for (size_t i = json_array_size(w->shard_waits); i-- > 0;) {
        json_t *x = json_array_get(w->shard_waits, i);
        if (!strcmp(jstr(x, "task"), task) && !strcmp(jstr(x, "source"), source))
            json_array_remove(w->shard_waits, i);
    }
}

/*
 * task/source holds a shard of lock id (generation gen). The process that resolves the lock
 * restarts the held subtasks it runs itself; in a cluster the others run in other workers, so
 * each subtask with held shards also looks at its locks every POLL_MS (sl__shard_poll) until
 * they resolve. Call with w->shard_mu held.
 */
static void add_wait(sl_worker *w, const char *task, const char *source, const char *id,
                     json_int_t gen)
{
    if (!w->shard_waits && !(w->shard_waits = json_array()))
        return;
    size_t i;
    json_t *x;
    json_array_foreach(w->shard_waits, i, x)
        if (!strcmp(jstr(x, "task"), task) && !strcmp(jstr(x, "source"), source) &&
            !strcmp(jstr(x, "id"), id) && json_integer_value(json_object_get(x, "gen")) == gen)
            return;
    int armed = waits_of(w, task, source);
    json_array_append_new(w->shard_waits, json_pack("{s:s,s:s,s:s,s:I}", "task", task, "source",
                                                    source, "id", id, "gen", gen));
    sl_subtask *s = subtask_of(w, task, source);
    if (!armed && s)
        sl__worker_post_in(w, SL__EV_SHARD_POLL, s, POLL_MS);
}

/* After a request: an arrival told to wait holds its shard. Call with w->shard_mu held. */
static void note_wait(sl_worker *w, const char *task, const char *source, const char *reply)
{
    json_t *r = reply ? json_loads(reply, 0, NULL) : NULL;
    if (r && !strcmp(jstr(r, "action"), "wait"))
        add_wait(w, task, source, jstr(r, "id"), json_integer_value(json_object_get(r, "gen")));
    json_decref(r);
}

static char *key_of(const char *task, const char *id);

void sl__shard_poll(sl_worker *w, sl_subtask *s)
{
    pthread_mutex_lock(&w->shard_mu);
    int release = 0;
    size_t i;
    json_t *x;
    json_array_foreach(w->shard_waits, i, x) {
        if (strcmp(jstr(x, "task"), s->task) || strcmp(jstr(x, "source"), s->source))
            continue;
        char *key = key_of(s->task, jstr(x, "id"));
        json_t *lock = key ? lock_load(w, key) : NULL;
        free(key);
        const char *st = jstr(lock, "state");
        const json_t *o = json_object_get(lock, "owner");
        /* over (resolved, a later generation, or gone with the task's meta), or resolved by hand
         * with this source to run the DDL */
        release = !lock || json_integer_value(json_object_get(lock, "gen")) >
                               json_integer_value(json_object_get(x, "gen")) ||
                  !strcmp(st, "resolved") ||
                  (!strcmp(st, "executing") && json_is_true(json_object_get(o, "by_hand")) &&
                   !strcmp(jstr(o, "source"), s->source));
        json_decref(lock);
        if (release)
            break;
    }
    if (release) {
        drop_waits(w, s->task, s->source);
        sl_log(SL_LOG_INFO, "shard", "task %s source %s: a lock it holds shards of was resolved "
               "elsewhere", s->task, s->source);
        sl__worker_post(w, SL__EV_RESYNC, s, NULL);
    } else if (waits_of(w, s->task, s->source)) {
        sl__worker_post_in(w, SL__EV_SHARD_POLL, s, POLL_MS);
    }
    pthread_mutex_unlock(&w->shard_mu);
}

/* ---- resolution ----------------------------------------------------------------------------- */

/*
 * The lock's DDL is on the target: mark it resolved and restart the running subtasks of the
 * sources that hold a shard of it, so that they read their held events again (the sink's hold
 * rows make that exact). Call with w->shard_mu held.
 */
static int resolve(sl_worker *w, const char *key, json_t *lock, sl_error *err)
{
    const char *task = jstr(lock, "task");
    const json_t *owner = json_object_get(lock, "owner");
    json_t *restart = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(lock, "shards"), i, m) {
        if (!json_is_true(json_object_get(m, "synced")))
            continue;
        if (owner && !strcmp(jstr(m, "source"), jstr(owner, "source")) &&
            !strcmp(jstr(m, "schema"), jstr(owner, "schema")) && !strcmp(jstr(m, "table"), jstr(owner, "table")))
            continue;       /* the owner applied its own events: it holds nothing */
        json_array_append(restart, json_object_get(m, "source"));
    }
    /* the shards stay listed: one that arrived and died before its hold reached the target
     * reads its DDL again and must learn that the lock is over (arrive answers "skip") */
    json_object_set_new(lock, "state", json_string("resolved"));
    json_object_del(lock, "owner");
    int rc = lock_save(w, key, lock, err);
    if (rc == 0) {
        sl_log(SL_LOG_INFO, "shard", "lock %s (gen %lld) resolved", jstr(lock, "id"),
               (long long)json_integer_value(json_object_get(lock, "gen")));
        for (size_t k = 0; k < w->nsubs; k++) {
            sl_subtask *s = w->subs[k];
            if (strcmp(s->task, task))
                continue;
            json_array_foreach(restart, i, m)
                if (!strcmp(json_string_value(m), s->source)) {
                    drop_waits(w, s->task, s->source);
                    sl__worker_post(w, SL__EV_RESYNC, s, NULL);
                    break;
                }
        }
    }
    json_decref(restart);
    return rc;
}

/* ---- requests ----------------------------------------------------------------------------- */

static int arrive(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                  sl_error *err)
{
    const char *ts = jstr(q, "target_schema"), *tt = jstr(q, "target_table");
    const char *schema = jstr(q, "schema"), *table = jstr(q, "table");
    char *target = qname(ts, tt), *ddl = norm_ddl(jstr(q, "ddl"));
    /* the same text under other sql_modes (ANSI_QUOTES...) is another DDL */
    json_int_t mode = json_integer_value(json_object_get(q, "ddl_mode"));
    char *key = NULL, loc[600];
    json_t *lock = NULL;
    int rc = SL_ENOMEM;
    if (!target || !ddl || !(key = rec_key(task, target)))
        goto out;
    snprintf(loc, sizeof loc, "%s, %llu", jstr(q, "file"),
             (unsigned long long)json_integer_value(json_object_get(q, "pos")));
    lock = lock_load(w, key);
    const char *state = jstr(lock, "state");
    if (lock && !strcmp(state, "resolved")) {
        const json_t *m = find_shard(lock, source, schema, table);
        const char *was = json_string_value(json_array_get(json_object_get(lock, "ddls"), 0));
        if (m && json_is_true(json_object_get(m, "synced")) && !strcmp(jstr(m, "location"), loc) &&
            was && !strcmp(was, ddl) && json_integer_value(json_object_get(lock, "ddl_mode")) == mode) {
            *reply = reply_of(json_pack("{s:s,s:O,s:s}", "id", jstr(lock, "id"), "gen",
                                        json_object_get(lock, "gen"), "action", "skip"));
            rc = *reply ? 0 : SL_ENOMEM;
            goto out;
        }
    }
    if (!lock || !strcmp(state, "resolved")) {
        const sl_task_plan *plan = plan_of(w, task);
        if (!plan) {
            rc = sl_error_set(err, SL_ESTATE, "task %s is not known to the worker", task);
            goto out;
        }
        json_t *ms = members(plan, ts, tt, err);
        if (!ms) {
            rc = err->code ? err->code : SL_ENOMEM;
            goto out;
        }
        json_int_t gen = lock ? json_integer_value(json_object_get(lock, "gen")) + 1 : 1;
        json_t *rev = json_incref(json_object_get(lock, REV));  /* the record replaced */
        char id[1024];
        snprintf(id, sizeof id, "%s-%s", task, target);
        json_decref(lock);
        lock = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:[s],s:I,s:s,s:o}", "id", id, "task", task,
                         "target", target, "target_schema", ts, "target_table", tt, "gen", gen,
                         "state", "waiting", "ddls", ddl, "ddl_mode", mode, "first_location", "",
                         "shards", ms);
        if (lock && rev)
            json_object_set(lock, REV, rev);
        json_decref(rev);
        if (!lock)
            goto out;
        char first[2048];
        snprintf(first, sizeof first, "%s `%s`.`%s` (%s)", source, schema, table, loc);
        json_object_set_new(lock, "first_location", json_string(first));
        sl_log(SL_LOG_INFO, "shard", "lock %s (gen %lld) created by %s `%s`.`%s` at %s: %s", id,
               (long long)gen, source, schema, table, loc, ddl);
    }
    const char *held = json_string_value(json_array_get(json_object_get(lock, "ddls"), 0));
    json_t *r = json_pack("{s:s,s:O}", "id", jstr(lock, "id"), "gen", json_object_get(lock, "gen"));
    if (!r)
        goto out;
    json_int_t held_mode = json_integer_value(json_object_get(lock, "ddl_mode"));
    if (strcmp(held ? held : "", ddl) != 0 || held_mode != mode) {
        char words[SL_DDLM_TEXT_MAX], shown[SL_DDLM_TEXT_MAX + 2048];
        sl_ddl_mode_text((unsigned)held_mode, words, sizeof words);
        snprintf(shown, sizeof shown, "%.2000s%s%s%s", held ? held : "", held_mode ? " (under sql_mode " : "",
                 words, held_mode ? ")" : "");
        json_object_set_new(r, "action", json_string("conflict"));
        json_object_set_new(r, "ddl", json_string(shown));
        *reply = reply_of(r);
        rc = *reply ? 0 : SL_ENOMEM;
        goto out;
    }
    json_t *m = find_shard(lock, source, schema, table);
    if (!m) {
        /* a table the listing did not see (created after the lock began) */
        m = json_pack("{s:s,s:s,s:s,s:b}", "source", source, "schema", schema, "table", table,
                      "synced", 0);
        json_array_append_new(json_object_get(lock, "shards"), m);
    }
    json_object_set_new(m, "synced", json_true());
    json_object_set_new(m, "location", json_string(loc));
    json_object_set(m, "file", json_object_get(q, "file"));
    json_object_set(m, "pos", json_object_get(q, "pos"));
    const json_t *owner = json_object_get(lock, "owner");
    int all = 1;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(lock, "shards"), i, x)
        all &= json_is_true(json_object_get(x, "synced"));
    const char *action = "wait";
    if (owner) {
        if (!strcmp(jstr(owner, "source"), source) && !strcmp(jstr(owner, "schema"), schema) &&
            !strcmp(jstr(owner, "table"), table))
            action = "execute";
    } else if (all) {
        action = "execute";
        json_object_set_new(lock, "state", json_string("executing"));
        json_object_set_new(lock, "owner", json_pack("{s:s,s:s,s:s,s:s,s:O}", "source", source,
                                                     "schema", schema, "table", table, "file",
                                                     jstr(q, "file"), "pos", json_object_get(q, "pos")));
        sl_log(SL_LOG_INFO, "shard", "lock %s: every shard arrived; %s `%s`.`%s` runs the DDL",
               jstr(lock, "id"), source, schema, table);
    }
    if ((rc = lock_save(w, key, lock, err)) != 0) {
        json_decref(r);
        goto out;
    }
    json_object_set_new(r, "action", json_string(action));
    *reply = reply_of(r);
    rc = *reply ? 0 : SL_ENOMEM;
out:
    if (rc == SL_ENOMEM && !err->code)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    json_decref(lock);
    free(target);
    free(ddl);
    free(key);
    return rc;
}

/* The key of the lock named id of task ("<task>-<target>" -> "<task>/<target>"), or NULL. */
static char *key_of(const char *task, const char *id)
{
    size_t n = strlen(task);
    if (strncmp(id, task, n) != 0 || id[n] != '-')
        return NULL;
    char *k = malloc(strlen(id) + 1);
    if (k)
        sprintf(k, "%s/%s", task, id + n + 1);
    return k;
}

static int done(sl_worker *w, const char *task, json_t *q, char **reply, sl_error *err)
{
    char *key = key_of(task, jstr(q, "id"));
    if (!key)
        return sl_error_set(err, SL_EINVAL, "no lock %s in task %s", jstr(q, "id"), task);
    json_t *lock = lock_load(w, key);
    int rc = 0;
    if (lock && json_integer_value(json_object_get(lock, "gen")) ==
                    json_integer_value(json_object_get(q, "gen")) &&
        strcmp(jstr(lock, "state"), "resolved") != 0)
        rc = resolve(w, key, lock, err);
    json_decref(lock);
    free(key);
    if (rc == 0 && !(*reply = strdup("{}")))
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    return rc;
}

static int state(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                 sl_error *err)
{
    char *key = key_of(task, jstr(q, "id"));
    if (!key)
        return sl_error_set(err, SL_EINVAL, "no lock %s in task %s", jstr(q, "id"), task);
    json_t *lock = lock_load(w, key);
    free(key);
    /* resolved: its generation is over (or the lock was removed with its task's meta) */
    json_int_t gen = json_integer_value(json_object_get(q, "gen"));
    int resolved = !lock || json_integer_value(json_object_get(lock, "gen")) > gen ||
                   !strcmp(jstr(lock, "state"), "resolved");
    /* a lock resolved by hand with exec names a held shard to run the DDL (sl_shard_unlock) */
    const json_t *o = json_object_get(lock, "owner");
    int owner = !resolved && o && !strcmp(jstr(o, "source"), source) &&
                !strcmp(jstr(o, "schema"), jstr(q, "schema")) && !strcmp(jstr(o, "table"), jstr(q, "table"));
    json_decref(lock);
    if (!resolved && !owner)        /* a restarted subtask holds it still */
        add_wait(w, task, source, jstr(q, "id"), gen);
    *reply = reply_of(json_pack("{s:b,s:b}", "resolved", resolved, "owner", owner));
    return *reply ? 0 : sl_error_set(err, SL_ENOMEM, "out of memory");
}

typedef struct scan_ctx {
    sl_worker  *w;
    const char *source;
    const char *file;
    unsigned long long pos;
    json_t     *keys;
} scan_ctx;

static int resume_visit(void *ud, const char *name, const char *value)
{
    scan_ctx *c = ud;
    json_t *lock = json_loads(value, 0, NULL);
    const json_t *o = json_object_get(lock, "owner");
    if (o && !strcmp(jstr(lock, "state"), "executing") && !strcmp(jstr(o, "source"), c->source) &&
        !json_is_true(json_object_get(o, "by_hand")) &&
        pos_cmp(jstr(o, "file"), (unsigned long long)json_integer_value(json_object_get(o, "pos")),
                c->file, c->pos) <= 0)
        json_array_append_new(c->keys, json_string(name));
    json_decref(lock);
    return 0;
}

static int resume(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                  sl_error *err)
{
    scan_ctx c = { w, source, jstr(q, "file"),
                   (unsigned long long)json_integer_value(json_object_get(q, "pos")), json_array() };
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/", task);
    int rc = sl_meta_scan(w->store, KIND, prefix, resume_visit, &c, err);
    size_t i;
    json_t *k;
    json_array_foreach(c.keys, i, k) {
        json_t *lock = lock_load(w, json_string_value(k));
        if (lock && rc == 0) {
            sl_log(SL_LOG_INFO, "shard", "lock %s: its DDL was run before a restart", jstr(lock, "id"));
            rc = resolve(w, json_string_value(k), lock, err);
        }
        json_decref(lock);
    }
    json_decref(c.keys);
    if (rc == 0 && !(*reply = strdup("{}")))
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    return rc;
}

/* ---- optimistic: the join of the shards' structures ------------------------------------------- */

enum { CL_OTHER = 0, CL_ADD, CL_DROP, CL_MODIFY, CL_RENAME };

typedef struct clause {
    int         kind;
    char        col[256];    /* the column, lower case */
    const char *def;         /* ADD/MODIFY: the definition after the name */
} clause;

static int word(const char **p, const char *w)
{
    size_t n = strlen(w);
    if (strncasecmp(*p, w, n) != 0 || ((*p)[n] && (*p)[n] != ' ' && (*p)[n] != '('))
        return 0;
    *p += n;
    while (**p == ' ')
        (*p)++;
    return 1;
}

/* One identifier (`quoted`, "quoted" with ANSI_QUOTES in mode, or bare) into out, lower case;
 * 0 if there is none. */
static int ident(const char **p, char *out, size_t n, unsigned mode)
{
    size_t k = 0;
    const char *s = *p;
    char qc = *s == '`' || (*s == '"' && (mode & SL_DDLM_ANSI_QUOTES)) ? *s : 0;
    if (qc) {
        for (s++; *s; s++) {
            if (*s == qc && s[1] != qc)
                break;
            if (*s == qc)
                s++;
            if (k + 1 < n)
                out[k++] = (char)tolower((unsigned char)*s);
        }
        if (*s != qc)
            return 0;
        s++;
    } else {
        while (*s && *s != ' ' && *s != ',' && *s != '(' && k + 1 < n)
            out[k++] = (char)tolower((unsigned char)*s++);
    }
    out[k] = '\0';
    while (*s == ' ')
        s++;
    *p = s;
    return k > 0;
}

/* A comma outside parentheses, quotes and backquotes: several clauses. A backslash escapes in
 * strings only, unless NO_BACKSLASH_ESCAPES is in mode ("x" is a name with ANSI_QUOTES). */
static int several(const char *s, unsigned mode)
{
    int depth = 0;
    char q = 0;
    for (; *s; s++) {
        if (q) {
            int str = q == '\'' || (q == '"' && !(mode & SL_DDLM_ANSI_QUOTES));
            if (str && !(mode & SL_DDLM_NO_BACKSLASH_ESCAPES) && *s == '\\' && s[1])
                s++;
            else if (*s == q)
                q = 0;
        } else if (*s == '\'' || *s == '"' || *s == '`') {
            q = *s;
        } else if (*s == '(') {
            depth++;
        } else if (*s == ')') {
            depth--;
        } else if (*s == ',' && depth == 0) {
            return 1;
        }
    }
    return 0;
}

/* What one normalized DDL of target, written in mode (SL_DDLM_*), does to its columns. */
static void classify(const char *ddl, const char *target, unsigned mode, clause *c)
{
    memset(c, 0, sizeof *c);
    const char *p = ddl;
    if (!word(&p, "ALTER") || !word(&p, "TABLE") || strncmp(p, target, strlen(target)) != 0)
        return;
    p += strlen(target);
    while (*p == ' ')
        p++;
    if (several(p, mode))
        return;
    static const char *const not_col[] = { "INDEX", "KEY", "UNIQUE", "PRIMARY", "CONSTRAINT",
        "FOREIGN", "FULLTEXT", "SPATIAL", "PARTITION", "CHECK", "PERIOD", "SYSTEM", "IF", NULL };
    int kind = word(&p, "ADD") ? CL_ADD : word(&p, "DROP") ? CL_DROP : word(&p, "MODIFY") ? CL_MODIFY
             : (word(&p, "CHANGE") || word(&p, "RENAME")) ? CL_RENAME : CL_OTHER;
    if (kind == CL_OTHER)
        return;
    if (kind == CL_RENAME) {
        /* RENAME TO/AS renames the table, RENAME INDEX/KEY an index: not columns */
        const char *q = p;
        c->kind = word(&q, "TO") || word(&q, "AS") || word(&q, "INDEX") || word(&q, "KEY") ? CL_OTHER : CL_RENAME;
        return;
    }
    int explicit_col = word(&p, "COLUMN");
    for (int i = 0; !explicit_col && not_col[i]; i++) {
        const char *q = p;
        if (word(&q, not_col[i]) || *p == '(')
            return;
    }
    if (!ident(&p, c->col, sizeof c->col, mode))
        return;
    if (kind == CL_DROP && *p && !word(&p, "RESTRICT") && !word(&p, "CASCADE"))
        return;
    if (kind != CL_DROP && !*p)
        return;
    c->def = p;
    c->kind = kind;
}

/* ---- optimistic: the widest of two column definitions ---------------------------------------- */

/* A column definition cut into its type name (lower case), the numbers in its parentheses, its
 * signedness and the rest (NULL, DEFAULT, COMMENT ...), as the shards' join compares them. */
typedef struct coldef {
    char name[32];
    long a, b;              /* (a) or (a,b); -1 when absent */
    int  is_unsigned, zerofill;
    const char *rest;
} coldef;

static int coldef_parse(const char *d, coldef *c)
{
    memset(c, 0, sizeof *c);
    c->a = c->b = -1;
    size_t n = 0;
    while (isalpha((unsigned char)*d) && n + 1 < sizeof c->name)
        c->name[n++] = (char)tolower((unsigned char)*d++);
    if (!n || isalpha((unsigned char)*d))
        return -1;
    while (*d == ' ')
        d++;
    if (*d == '(') {
        char *end;
        c->a = strtol(d + 1, &end, 10);
        d = end;
        while (*d == ' ')
            d++;
        if (*d == ',') {
            c->b = strtol(d + 1, &end, 10);
            d = end;
            while (*d == ' ')
                d++;
        }
        if (*d++ != ')')
            return -1;
        while (*d == ' ')
            d++;
    }
    for (;;) {
        if (word(&d, "UNSIGNED"))
            c->is_unsigned = 1;
        else if (word(&d, "SIGNED"))
            c->is_unsigned = 0;
        else if (word(&d, "ZEROFILL"))
            c->zerofill = 1;
        else
            break;
    }
    c->rest = d;
    return 0;
}

static int int_rank(const char *t)
{
    static const char *const r[] = { "tinyint", "smallint", "mediumint", "int", "bigint", NULL };
    for (int i = 0; r[i]; i++)
        if (!strcmp(t, r[i]))
            return i + 1;
    return !strcmp(t, "integer") ? 4 : 0;
}

/*
 * The join of two definitions of one column (DM's optimistic mode takes the wider type): the
 * same integer signedness with the larger integer type; the same string type (CHAR, VARCHAR,
 * BINARY, VARBINARY) with the larger length; DECIMAL/NUMERIC with the most integer digits and
 * the most decimals. Whatever follows the type must be the same. 1 and out (the wider of a and
 * b when one covers the other, else a new definition), or 0: incompatible (a conflict).
 */
static int widen(const char *a, const char *b, char *out, size_t n)
{
    coldef x, y;
    if (coldef_parse(a, &x) < 0 || coldef_parse(b, &y) < 0 || strcasecmp(x.rest, y.rest) != 0 ||
        x.is_unsigned != y.is_unsigned || x.zerofill != y.zerofill)
        return 0;
    int rx = int_rank(x.name), ry = int_rank(y.name);
    if (rx && ry) {
        snprintf(out, n, "%s", rx >= ry ? a : b);
        return 1;
    }
    static const char *const str[] = { "char", "varchar", "binary", "varbinary", NULL };
    for (int i = 0; str[i]; i++)
        if (!strcmp(x.name, str[i]) && !strcmp(y.name, str[i])) {
            snprintf(out, n, "%s", (x.a < 0 ? 1 : x.a) >= (y.a < 0 ? 1 : y.a) ? a : b);
            return 1;
        }
    int dx = !strcmp(x.name, "decimal") || !strcmp(x.name, "numeric") || !strcmp(x.name, "dec");
    int dy = !strcmp(y.name, "decimal") || !strcmp(y.name, "numeric") || !strcmp(y.name, "dec");
    if (dx && dy) {
        long px = x.a < 0 ? 10 : x.a, sx = x.b < 0 ? 0 : x.b;
        long py = y.a < 0 ? 10 : y.a, sy = y.b < 0 ? 0 : y.b;
        long ints = px - sx > py - sy ? px - sx : py - sy, sc = sx > sy ? sx : sy;
        if (ints + sc > 65)
            return 0;
        if (ints + sc == px && sc == sx)
            snprintf(out, n, "%s", a);
        else if (ints + sc == py && sc == sy)
            snprintf(out, n, "%s", b);
        else
            snprintf(out, n, "DECIMAL(%ld,%ld)%s%s%s%s", ints + sc, sc, x.is_unsigned ? " UNSIGNED" : "",
                     x.zerofill ? " ZEROFILL" : "", *x.rest ? " " : "", x.rest);
        return 1;
    }
    return 0;
}

static json_t *obj_at(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!v) {
        v = json_object();
        json_object_set_new(o, k, v);
    }
    return v;
}

static int in_list(const json_t *a, const char *x)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
        if (!strcmp(json_string_value(v) ? json_string_value(v) : "", x))
            return 1;
    return 0;
}

/* The pending DROP COLUMN e of col is me's to run when nobody ran it yet and every shard of it
 * has dropped the column: mark it ("by") and forget the column's ADD and MODIFY. 1 if it is. */
static int drop_claim(json_t *rec, const char *col, json_t *e, const char *me)
{
    json_t *mem = json_object_get(e, "members"), *x;
    if (json_object_get(e, "by") || !json_array_size(mem))
        return 0;
    size_t i;
    json_array_foreach(mem, i, x)
        if (!in_list(json_object_get(e, "dropped"), json_string_value(x)))
            return 0;
    json_object_set_new(e, "by", json_string(me));
    json_object_del(obj_at(rec, "add"), col);
    json_object_del(obj_at(rec, "modify"), col);
    return 1;
}

/*
 * A DDL of a shard in optimistic mode: the target follows the join of the shards' structures.
 * ADD (or MODIFY) COLUMN runs at the first shard that runs it and is skipped for the others
 * when their definition is the same (else a conflict); DROP COLUMN runs at the last shard of
 * the group that drops it; RENAME/CHANGE COLUMN is a conflict; another DDL runs once, at the
 * first shard, unless strict (then it is a conflict). The decision is kept, so a shard that
 * reads its DDL again after a restart gets the same answer ("execute" again for the shard that
 * ran it: the sink's pending-DDL marker makes that exact).
 */
static int join(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                sl_error *err)
{
    const char *ts = jstr(q, "target_schema"), *tt = jstr(q, "target_table");
    char *target = qname(ts, tt), *ddl = norm_ddl(jstr(q, "ddl")), *key = NULL;
    char *shard = qname(jstr(q, "schema"), jstr(q, "table"));
    json_t *rec = NULL, *r = NULL;
    int rc = SL_ENOMEM, strict = json_is_true(json_object_get(q, "strict"));
    if (!target || !ddl || !shard || !(key = rec_key(task, target)))
        goto out;
    char me[1400];
    snprintf(me, sizeof me, "%s:%s", source, shard);
    rec = rec_load(w, "shard_join", key);
    if (!rec && !(rec = json_pack("{s:s}", "target", target)))
        goto out;
    clause c;
    classify(ddl, target, (unsigned)json_integer_value(json_object_get(q, "ddl_mode")), &c);
    const char *action = "skip", *other = NULL, *why = NULL, *sql = NULL;
    if (c.kind == CL_ADD || c.kind == CL_MODIFY) {
        json_t *m = obj_at(rec, c.kind == CL_ADD ? "add" : "modify");
        json_t *e = json_object_get(m, c.col);
        char joined[1024];
        if (!e) {
            json_object_set_new(m, c.col, json_pack("{s:s,s:s,s:s}", "def", c.def, "ddl", ddl, "by", me));
            if (c.kind == CL_ADD)
                json_object_del(obj_at(rec, "drop"), c.col);
            action = "execute";
        } else if (!strcmp(jstr(e, "by"), me) && !strcmp(jstr(e, "from"), c.def)) {
            /* this shard widened the column and reads its DDL again (a restart) */
            action = "execute";
            sql = jstr(e, "sql");
        } else if (strcmp(jstr(e, "def"), c.def) != 0 &&
                   (strict || !widen(jstr(e, "def"), c.def, joined, sizeof joined))) {
            action = "conflict";
            other = jstr(e, "ddl");
            why = strict ? "the same column with another definition (strict_optimistic_shard_mode "
                           "does not widen types)"
                         : "the same column with another definition, and neither type holds the "
                           "other's values";
        } else if (strcmp(jstr(e, "def"), c.def) != 0 && strcmp(joined, jstr(e, "def")) != 0) {
            /* wider than the target's: the target takes the join of the two (this shard's DDL
             * when it is the join, else a MODIFY to it), recorded with who ran it from what */
            char *mod = NULL;
            if (c.kind != CL_MODIFY || strcmp(joined, c.def) != 0) {
                size_t ml = strlen(target) + strlen(c.col) * 2 + strlen(joined) + 64;
                if ((mod = malloc(ml))) {
                    char *qc = qname("", c.col);   /* "``.`col`": the column, quoted */
                    snprintf(mod, ml, "ALTER TABLE %s MODIFY COLUMN %s %s", target,
                             qc ? qc + 3 : c.col, joined);
                    free(qc);
                }
            }
            json_object_set_new(m, c.col, json_pack("{s:s,s:s,s:s,s:s,s:s?}", "def", joined, "ddl",
                                                    mod ? mod : ddl, "by", me, "from", c.def, "sql", mod));
            free(mod);
            e = json_object_get(m, c.col);
            sql = jstr(e, "sql");
            action = "execute";
            sl_log(SL_LOG_INFO, "shard", "optimistic %s: column %s widens to %s", target, c.col, joined);
        } else if (!strcmp(jstr(e, "def"), c.def) && !strcmp(jstr(e, "by"), me)) {
            action = "execute";
        }   /* else: the target's type holds this shard's already (a narrower one is not run) */
    } else if (c.kind == CL_DROP) {
        json_t *d = obj_at(rec, "drop"), *e = json_object_get(d, c.col);
        if (!e) {
            const sl_task_plan *plan = plan_of(w, task);
            json_t *ms = plan ? members(plan, ts, tt, err) : NULL, *x;
            if (!ms) {
                rc = plan ? (err->code ? err->code : SL_ENOMEM)
                          : sl_error_set(err, SL_ESTATE, "task %s is not known to the worker", task);
                goto out;
            }
            json_t *names = json_array();
            size_t i;
            json_array_foreach(ms, i, x) {
                char *n = qname(jstr(x, "schema"), jstr(x, "table"));
                char full[1400];
                snprintf(full, sizeof full, "%s:%s", jstr(x, "source"), n ? n : "");
                free(n);
                json_array_append_new(names, json_string(full));
            }
            json_decref(ms);
            /* the statement another shard may run (leave_join), so in no session's sql_mode:
             * the same DROP, its names in backticks */
            char *qc = qname("", c.col), drop[1024];
            snprintf(drop, sizeof drop, "ALTER TABLE %s DROP COLUMN %s", target, qc ? qc + 3 : c.col);
            free(qc);
            e = json_pack("{s:o,s:[],s:s}", "members", names, "dropped", "ddl", drop);
            json_object_set_new(d, c.col, e);
        }
        json_t *dropped = json_object_get(e, "dropped");
        if (!in_list(dropped, me))
            json_array_append_new(dropped, json_string(me));
        json_t *mem = json_object_get(e, "members");
        if (!in_list(mem, me))
            json_array_append_new(mem, json_string(me));
        drop_claim(rec, c.col, e, me);
        if (!strcmp(jstr(e, "by"), me))
            action = "execute";
    } else if (c.kind == CL_RENAME) {
        action = "conflict";
        why = "renaming a column of a merged table is not coordinated in optimistic mode (the "
              "other shards' rows would name the old column)";
    } else if (strict) {
        action = "conflict";
        why = "strict_optimistic_shard_mode coordinates only one ADD, DROP or MODIFY COLUMN per "
              "ALTER TABLE";
    } else {
        json_t *o = obj_at(rec, "other");
        const char *by = jstr(json_object_get(o, ddl), "by");
        if (!*by) {
            json_object_set_new(o, ddl, json_pack("{s:s}", "by", me));
            action = "execute";
        } else if (!strcmp(by, me)) {
            action = "execute";
        }
    }
    if ((rc = rec_save(w, "shard_join", key, rec, err)) != 0)
        goto out;
    sl_log(SL_LOG_INFO, "shard", "optimistic %s %s: %s (%s)", target, me, action, ddl);
    r = json_pack("{s:s,s:s}", "action", action, "id", key);
    if (r && other)
        json_object_set_new(r, "ddl", json_string(other));
    if (r && why)
        json_object_set_new(r, "why", json_string(why));
    if (r && sql && *sql)
        json_object_set_new(r, "sql", json_string(sql));
    *reply = r ? reply_of(r) : NULL;
    r = NULL;
    rc = *reply ? 0 : SL_ENOMEM;
out:
    if (rc == SL_ENOMEM && !err->code)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    json_decref(rec);
    json_decref(r);
    free(target);
    free(ddl);
    free(shard);
    free(key);
    return rc;
}

static int leave(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                 sl_error *err);

int sl__shard_request(sl_worker *w, const char *prefix, const char *request, char **reply)
{
    *reply = NULL;
    /* "<task>/<source>/<phase>/<stage>" */
    char task[256], source[256];
    const char *a = strchr(prefix, '/'), *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || !b || (size_t)(a - prefix) >= sizeof task || (size_t)(b - a - 1) >= sizeof source)
        return SL_EINVAL;
    snprintf(task, sizeof task, "%.*s", (int)(a - prefix), prefix);
    snprintf(source, sizeof source, "%.*s", (int)(b - a - 1), a + 1);
    json_t *q = json_loads(request, 0, NULL);
    const char *op = jstr(q, "op");
    sl_error err = { 0 };
    int rc;
    pthread_mutex_lock(&w->shard_mu);
    for (int tries = 0;; tries++) {
        if (!strcmp(op, "arrive"))
            rc = arrive(w, task, source, q, reply, &err);
        else if (!strcmp(op, "leave"))
            rc = leave(w, task, source, q, reply, &err);
        else if (!strcmp(op, "join"))
            rc = join(w, task, source, q, reply, &err);
        else if (!strcmp(op, "done"))
            rc = done(w, task, q, reply, &err);
        else if (!strcmp(op, "state"))
            rc = state(w, task, source, q, reply, &err);
        else if (!strcmp(op, "resume"))
            rc = resume(w, task, source, q, reply, &err);
        else
            rc = sl_error_set(&err, SL_ENOTSUP, "unknown shard op '%s'", op);
        if (rc != SL_AGAIN)
            break;
        /* another process changed the record between our read and our write: again, on it */
        free(*reply);
        *reply = NULL;
        if (tries == TRIES) {
            rc = sl_error_set(&err, SL_ETIMEOUT, "shard DDL lock of task %s: %d writes in a row "
                              "lost to other workers' writes", task, TRIES);
            break;
        }
    }
    if (rc == 0 && !strcmp(op, "arrive"))
        note_wait(w, task, source, *reply);
    pthread_mutex_unlock(&w->shard_mu);
    json_decref(q);
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, "shard", "task %s source %s: %s", task, source, err.msg);
        /* the message travels back as the reply, for the sink to fail with */
        free(*reply);
        *reply = reply_of(json_pack("{s:s}", "error", err.msg));
    }
    return rc;
}

/* ---- status and operators -------------------------------------------------------------------- */

typedef struct list_ctx {
    const char *source;     /* NULL: every lock */
    json_t     *out;
} list_ctx;

static int list_visit(void *ud, const char *name, const char *value)
{
    (void)name;
    list_ctx *c = ud;
    json_t *lock = json_loads(value, 0, NULL);
    if (!lock || !strcmp(jstr(lock, "state"), "resolved")) {
        json_decref(lock);
        return 0;
    }
    json_t *synced = json_array(), *unsynced = json_array(), *m;
    int mine = c->source == NULL;
    size_t i;
    json_array_foreach(json_object_get(lock, "shards"), i, m) {
        char *n = qname(jstr(m, "schema"), jstr(m, "table"));
        char full[1200];
        snprintf(full, sizeof full, "%s:%s", jstr(m, "source"), n ? n : "");
        free(n);
        json_array_append_new(json_is_true(json_object_get(m, "synced")) ? synced : unsynced,
                              json_string(full));
        if (c->source && !strcmp(jstr(m, "source"), c->source))
            mine = 1;
    }
    if (mine)
        json_array_append_new(c->out, json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:o,s:o}", "id",
                                                json_object_get(lock, "id"), "target",
                                                json_object_get(lock, "target"), "state",
                                                json_object_get(lock, "state"), "ddl_list",
                                                json_object_get(lock, "ddls"), "first_location",
                                                json_object_get(lock, "first_location"), "task",
                                                json_object_get(lock, "task"), "synced", synced,
                                                "unsynced", unsynced));
    else {
        json_decref(synced);
        json_decref(unsynced);
    }
    json_decref(lock);
    return 0;
}

/* Optimistic: a DROP COLUMN that some shards ran and others not yet is what waits. */
static int join_visit(void *ud, const char *name, const char *value)
{
    list_ctx *c = ud;
    json_t *rec = json_loads(value, 0, NULL), *d;
    const char *col;
    json_object_foreach(json_object_get(rec, "drop"), col, d) {
        if (json_object_get(d, "by"))
            continue;
        json_t *synced = json_array(), *unsynced = json_array(), *m;
        size_t i;
        int mine = c->source == NULL;
        json_array_foreach(json_object_get(d, "members"), i, m) {
            const char *n = json_string_value(m) ? json_string_value(m) : "";
            json_array_append(in_list(json_object_get(d, "dropped"), n) ? synced : unsynced, m);
            size_t sl = c->source ? strlen(c->source) : 0;
            if (c->source && !strncmp(n, c->source, sl) && n[sl] == ':')
                mine = 1;
        }
        if (mine) {
            char id[1024];
            const char *slash = strchr(name, '/');
            snprintf(id, sizeof id, "%.*s-%s", slash ? (int)(slash - name) : 0, name,
                     jstr(rec, "target"));
            json_array_append_new(c->out, json_pack("{s:s,s:O,s:s,s:[O],s:s,s:s#,s:o,s:o}", "id", id,
                                                    "target", json_object_get(rec, "target"),
                                                    "state", "optimistic", "ddl_list",
                                                    json_object_get(d, "ddl"), "first_location", "",
                                                    "task", name, slash ? (int)(slash - name) : 0,
                                                    "synced", synced, "unsynced", unsynced));
        } else {
            json_decref(synced);
            json_decref(unsynced);
        }
    }
    json_decref(rec);
    return 0;
}

static json_t *unresolved(sl_worker *w, const char *task, const char *source)
{
    list_ctx c = { source, json_array() };
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/", task ? task : "");
    sl_meta_scan(w->store, KIND, task ? prefix : "", list_visit, &c, NULL);
    sl_meta_scan(w->store, "shard_join", task ? prefix : "", join_visit, &c, NULL);
    return c.out;
}

void sl__shard_status(sl_worker *w, const char *task, const char *source, json_t *o)
{
    json_t *locks = unresolved(w, task, source), *sync = json_object_get(o, "sync_status");
    if (!json_array_size(locks) || !sync) {
        json_decref(locks);
        return;
    }
    json_t *blocking = json_array(), *groups = json_array(), *l;
    size_t i;
    size_t slen = source ? strlen(source) : 0;
    int held = 0;
    json_array_foreach(locks, i, l) {
        json_array_extend(blocking, json_object_get(l, "ddl_list"));
        /* a shard of this source that ran a pessimistic lock's DDL is held: the events after
         * it wait, so the subtask is not synced whatever its sink has applied */
        json_t *m;
        size_t k;
        if (source && strcmp(jstr(l, "state"), "optimistic"))
            json_array_foreach(json_object_get(l, "synced"), k, m) {
                const char *e = json_string_value(m);
                held |= e && !strncmp(e, source, slen) && e[slen] == ':';
            }
        json_array_append_new(groups, json_pack("{s:O,s:O,s:O,s:O,s:O}", "target",
                                                json_object_get(l, "target"), "ddl_list",
                                                json_object_get(l, "ddl_list"), "first_location",
                                                json_object_get(l, "first_location"), "synced",
                                                json_object_get(l, "synced"), "unsynced",
                                                json_object_get(l, "unsynced")));
    }
    json_object_set(o, "unresolved_ddl_lock_id", json_object_get(json_array_get(locks, 0), "id"));
    json_object_set_new(sync, "blocking_ddls", blocking);
    json_object_set_new(sync, "unresolved_groups", groups);
    if (held)
        json_object_set_new(sync, "synced", json_false());
    json_decref(locks);
}

json_t *sl_shard_locks(sl_worker *w, const char *task)
{
    return unresolved(w, task, NULL);
}

/*
 * exec: the first shard that reached the DDL runs it; the shards that never came count as
 * synced. Its subtask restarts, finds its hold's lock executing with itself as owner, applies
 * its held events up to the DDL, runs it and reports "done" as a last arrival would. Call with
 * w->shard_mu held.
 */
static int unlock_exec(sl_worker *w, const char *key, json_t *lock, sl_error *err)
{
    json_t *first = NULL, *m;
    size_t i;
    json_array_foreach(json_object_get(lock, "shards"), i, m) {
        if (json_is_true(json_object_get(m, "synced")) && !first)
            first = m;
        json_object_set_new(m, "synced", json_true());
    }
    if (!first)
        return sl_error_set(err, SL_ESTATE, "no shard of lock %s has reached its DDL",
                            jstr(lock, "id"));
    json_object_set_new(lock, "state", json_string("executing"));
    /* by_hand: the owner was held, so its source's progress says nothing about the DDL
     * ("resume" leaves it alone); its sink tells "done" itself (its hold shows the DDL ran) */
    json_object_set_new(lock, "owner", json_pack("{s:O,s:O,s:O,s:O,s:O,s:b}", "source",
                                                 json_object_get(first, "source"), "schema",
                                                 json_object_get(first, "schema"), "table",
                                                 json_object_get(first, "table"), "file",
                                                 json_object_get(first, "file"), "pos",
                                                 json_object_get(first, "pos"), "by_hand", 1));
    int rc = lock_save(w, key, lock, err);
    if (rc == 0) {
        sl_subtask *s = subtask_of(w, jstr(lock, "task"), jstr(first, "source"));
        if (s) {
            drop_waits(w, s->task, s->source);
            sl__worker_post(w, SL__EV_RESYNC, s, NULL);
        }
    }
    return rc;
}

/*
 * Optimistic: a dropped shard leaves every DROP COLUMN still waiting for shards of its target
 * (DM removes a dropped table from the group). A DROP COLUMN whose remaining shards have all run
 * it is now this shard's to run on the target: the reply's "sql" lists those statements (the
 * same again when the DROP TABLE is read again after a restart: "by" names this shard).
 */
static int leave_join(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                      sl_error *err)
{
    char *target = qname(jstr(q, "target_schema"), jstr(q, "target_table"));
    char *shard = qname(jstr(q, "schema"), jstr(q, "table")), *key = NULL;
    json_t *rec = NULL, *sql = json_array();
    int rc = SL_ENOMEM, changed = 0;
    if (!target || !shard || !sql || !(key = rec_key(task, target)))
        goto out;
    char me[1400];
    snprintf(me, sizeof me, "%s:%s", source, shard);
    rec = rec_load(w, "shard_join", key);
    const char *col;
    json_t *e;
    json_object_foreach(json_object_get(rec, "drop"), col, e) {
        const char *by = jstr(e, "by");
        if (*by) {
            if (!strcmp(by, me))
                json_array_append(sql, json_object_get(e, "ddl"));
            continue;
        }
        json_t *mem = json_object_get(e, "members"), *x;
        size_t i;
        json_array_foreach(mem, i, x)
            if (!strcmp(json_string_value(x), me)) {
                json_array_remove(mem, i);
                changed = 1;
                sl_log(SL_LOG_INFO, "shard", "optimistic %s: %s was dropped and leaves the DROP COLUMN "
                       "%s", target, me, col);
                break;
            }
        if (drop_claim(rec, col, e, me)) {
            json_array_append(sql, json_object_get(e, "ddl"));
            changed = 1;
        }
    }
    rc = changed ? rec_save(w, "shard_join", key, rec, err) : 0;
    if (rc == 0) {
        *reply = reply_of(json_pack("{s:O}", "sql", sql));
        rc = *reply ? 0 : SL_ENOMEM;
    }
out:
    if (rc == SL_ENOMEM && !err->code)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    json_decref(rec);
    json_decref(sql);
    free(target);
    free(shard);
    free(key);
    return rc;
}

/*
 * A shard's table was dropped: it leaves the waiting lock of its target (if it had not reached
 * its DDL). When every shard left has, the first that came runs the DDL, as after a by-hand
 * unlock with exec. Idempotent. In optimistic mode: leave_join.
 */
static int leave(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                 sl_error *err)
{
    if (json_is_true(json_object_get(q, "optimistic")))
        return leave_join(w, task, source, q, reply, err);
    char *target = qname(jstr(q, "target_schema"), jstr(q, "target_table")), *key = NULL;
    json_t *lock = NULL;
    int rc = SL_ENOMEM;
    if (!target || !(key = rec_key(task, target)))
        goto out;
    lock = lock_load(w, key);
    rc = 0;
    if (lock && !strcmp(jstr(lock, "state"), "waiting")) {
        json_t *shards = json_object_get(lock, "shards"), *m;
        size_t i;
        json_array_foreach(shards, i, m)
            if (!strcmp(jstr(m, "source"), source) && !strcmp(jstr(m, "schema"), jstr(q, "schema")) &&
                !strcmp(jstr(m, "table"), jstr(q, "table")) && !json_is_true(json_object_get(m, "synced"))) {
                json_array_remove(shards, i);
                sl_log(SL_LOG_INFO, "shard", "lock %s: %s `%s`.`%s` was dropped and leaves it",
                       jstr(lock, "id"), source, jstr(q, "schema"), jstr(q, "table"));
                break;
            }
        int all = 1;
        json_array_foreach(shards, i, m)
            all &= json_is_true(json_object_get(m, "synced"));
        rc = all ? unlock_exec(w, key, lock, err) : lock_save(w, key, lock, err);
    }
    if (rc == 0 && !(*reply = strdup("{}")))
        rc = SL_ENOMEM;
out:
    if (rc == SL_ENOMEM && !err->code)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    json_decref(lock);
    free(target);
    free(key);
    return rc;
}

int sl_shard_unlock(sl_worker *w, const char *task, const char *id, int exec, sl_error *err)
{
    pthread_mutex_lock(&w->shard_mu);
    int rc = SL_ENOENT;
    char *key = key_of(task, id);
    json_t *lock = key ? lock_load(w, key) : NULL;
    for (int tries = 0; lock && tries < TRIES; tries++) {
        if (!strcmp(jstr(lock, "state"), "waiting")) {
            rc = exec ? unlock_exec(w, key, lock, err) : resolve(w, key, lock, err);
            if (rc == 0)
                sl_log(SL_LOG_WARN, "shard", "lock %s resolved by hand%s", id, exec ?
                       ": the first shard that reached it runs its DDL" : " (its DDL is not run)");
        } else if (!strcmp(jstr(lock, "state"), "executing")) {
            rc = sl_error_set(err, SL_ESTATE, "lock %s is running its DDL already", id);
        } else {
            rc = SL_ENOENT;
        }
        if (rc != SL_AGAIN)
            break;
        json_decref(lock);      /* a worker changed it meanwhile: decide on what it holds now */
        lock = lock_load(w, key);
        rc = SL_ENOENT;
    }
    if (rc == SL_AGAIN)
        rc = sl_error_set(err, SL_ETIMEOUT, "lock %s keeps changing under other workers' writes: "
                          "try again", id);
    json_decref(lock);
    free(key);
    pthread_mutex_unlock(&w->shard_mu);
    if (rc == SL_ENOENT)
        sl_error_set(err, rc, "task %s has no unresolved shard DDL lock %s", task, id);
    return rc;
}
