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

#include "ddl.h"
#include "sluice/event.h"
#include "sluice/log.h"
#include "ddl.h"
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

/* The DDL as a lock keeps and shows it: whitespace runs as one space, no trailing ';' (shards
 * compare their statements with same_ddl, below). */
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

/*
 * 1 if DDL texts a (read in sql_mode bits ma) and b (in mb) are the same statement, 0 if not,
 * SL_ENOMEM. Two shards that ran one statement send it in the words of their sessions:
 * `ADD COLUMN w INT` and `add column W int` (column names compare without case) are one DDL. So
 * their normalized forms are compared (ddl.h sl_ddl_normalize: keywords and names other than
 * the tables without case, quoting, spacing and comments aside), under modes that may differ
 * only in how names and strings are quoted: the other modes change what the same words mean
 * (PIPES_AS_CONCAT, REAL_AS_FLOAT...). The tables are the routed target, the same text for every
 * shard, and compared exactly.
 */
static int same_ddl(const char *a, unsigned ma, const char *b, unsigned mb)
{
    if (ma == mb && !strcmp(a, b))
        return 1;
    const unsigned quoting = SL_DDLM_ANSI_QUOTES | SL_DDLM_NO_BACKSLASH_ESCAPES;
    if ((ma & ~quoting) != (mb & ~quoting))
        return 0;
    sl_sbuf x, y;
    sl_sbuf_init(&x);
    sl_sbuf_init(&y);
    int rc = sl_ddl_normalize(a, strlen(a), ma, &x) < 0 || sl_ddl_normalize(b, strlen(b), mb, &y) < 0
             ? SL_ENOMEM : x.len == y.len && (!x.len || !memcmp(x.p, y.p, x.len));
    sl_sbuf_free(&x);
    sl_sbuf_free(&y);
    return rc;
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

void sl__shard_forget_waits(sl_worker *w, const char *task, const char *source)
{
    drop_waits(w, task, source);
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

/* 1 if s is one of the worker's subtasks. Call with w->shard_mu held. */
static int registered(sl_worker *w, const sl_subtask *s)
{
    for (size_t i = 0; i < w->nsubs; i++)
        if (w->subs[i] == s)
            return 1;
    return 0;
}

void sl__shard_poll(sl_worker *w, sl_subtask *s)
{
    pthread_mutex_lock(&w->shard_mu);
    /* a subtask that left the worker (its task deleted, its source bound elsewhere) may outlive
     * the plan its task and source names point into, until its pipeline has stopped: its last
     * poll does nothing (sl__worker_remove forgot its waits) */
    if (!registered(w, s)) {
        pthread_mutex_unlock(&w->shard_mu);
        return;
    }
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
        /* (was: the first shard's words, maybe not this one's) */
        if (m && json_is_true(json_object_get(m, "synced")) && !strcmp(jstr(m, "location"), loc) &&
            was && same_ddl(was, (unsigned)json_integer_value(json_object_get(lock, "ddl_mode")),
                            ddl, (unsigned)mode) == 1) {
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
    int same = same_ddl(held ? held : "", (unsigned)held_mode, ddl, (unsigned)mode);
    if (same < 0) {
        json_decref(r);
        goto out;
    }
    if (!same) {
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
    /* resolved: its generation is over. Gone: not in the store at all, which nothing but a
     * removal of the task's records does (resolved locks stay); it is not taken for resolved,
     * whose held events would be applied without the DDL (the sink arrives again instead) */
    json_int_t gen = json_integer_value(json_object_get(q, "gen"));
    int gone = !lock;
    int resolved = !gone && (json_integer_value(json_object_get(lock, "gen")) > gen ||
                             !strcmp(jstr(lock, "state"), "resolved"));
    /* a lock resolved by hand with exec names a held shard to run the DDL (sl_shard_unlock) */
    const json_t *o = json_object_get(lock, "owner");
    int owner = !resolved && o && !strcmp(jstr(o, "source"), source) &&
                !strcmp(jstr(o, "schema"), jstr(q, "schema")) && !strcmp(jstr(o, "table"), jstr(q, "table"));
    json_decref(lock);
    if (!gone && !resolved && !owner)   /* a restarted subtask holds it still */
        add_wait(w, task, source, jstr(q, "id"), gen);
    *reply = reply_of(json_pack("{s:b,s:b,s:b}", "resolved", resolved, "owner", owner, "gone", gone));
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

/*
 * A shard's ALTER TABLE is decided clause by clause (sl_ddl_alter_split), as DM splits one
 * statement into one DDL per change: an ALTER that drops two columns, or adds one and drops
 * another, is as many decisions as clauses. Then the clauses this shard runs go to the target as
 * ONE statement (an ALTER is atomic there, so a crash leaves all of it or none; the sink's
 * pending-DDL marker covers it as any DDL), and a conflict in any clause decides nothing of the
 * others. ALGORITHM= and LOCK= say how the source ran it and are left out of a statement that
 * runs only a part.
 */
enum { CL_OTHER = 0, CL_ADD, CL_DROP, CL_MODIFY, CL_RENAME, CL_OPTION, CL_UNREAD };

typedef struct clause {
    int         kind;
    char        col[256];    /* the column, lower case */
    const char *def;         /* ADD/MODIFY: the definition after the name */
} clause;

static int ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* The keyword w (any case) at *p as a whole word: past it and the spaces after, 1; else 0. */
static int word(const char **p, const char *w)
{
    size_t n = strlen(w);
    if (strncasecmp(*p, w, n) != 0 || ident_char((unsigned char)(*p)[n]))
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
        while (ident_char((unsigned char)*s) && k + 1 < n)
            out[k++] = (char)tolower((unsigned char)*s++);
    }
    out[k] = '\0';
    while (*s == ' ')
        s++;
    *p = s;
    return k > 0;
}

/* After ADD or DROP: the words that start something other than a column (PERIOD, SYSTEM and
 * VECTOR only with the word after them: a column may be named so). */
static int not_column(const char *p)
{
    static const char *const w[][2] = { { "INDEX", "" }, { "KEY", "" }, { "UNIQUE", "" },
        { "PRIMARY", "" }, { "CONSTRAINT", "" }, { "FOREIGN", "" }, { "FULLTEXT", "" },
        { "SPATIAL", "" }, { "PARTITION", "" }, { "CHECK", "" }, { "PERIOD", "FOR" },
        { "SYSTEM", "VERSIONING" }, { "VECTOR", "" } };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) {
        const char *q = p;
        if (word(&q, w[i][0]) && (!*w[i][1] || word(&q, w[i][1])))
            return 1;
    }
    return *p == '(';
}

/* What one clause of an ALTER TABLE (as sl_ddl_alter_split gives it, in mode) does to a column.
 * CL_UNREAD: a DROP, MODIFY or CHANGE of a column whose name or end cannot be read, which must
 * not run unless every shard ran it. */
static void classify(const char *cl, unsigned mode, clause *c)
{
    memset(c, 0, sizeof *c);
    const char *p = cl;
    int change = 0, kind = word(&p, "ADD") ? CL_ADD : word(&p, "DROP") ? CL_DROP
                         : word(&p, "MODIFY") ? CL_MODIFY : (change = word(&p, "CHANGE")) ? CL_MODIFY
                         : word(&p, "RENAME") ? CL_RENAME
                         : (word(&p, "ALGORITHM") || word(&p, "LOCK")) ? CL_OPTION : CL_OTHER;
    if (kind == CL_RENAME) {
        /* RENAME TO/AS renames the table, RENAME INDEX/KEY an index: not columns */
        c->kind = word(&p, "COLUMN") ? CL_RENAME : CL_OTHER;
        return;
    }
    if (kind == CL_OTHER || kind == CL_OPTION) {
        c->kind = kind;
        return;
    }
    if (!word(&p, "COLUMN") && not_column(p))
        return;
    if (kind == CL_ADD) {
        const char *q = p;
        if (word(&q, "IF") && word(&q, "NOT") && word(&q, "EXISTS"))
            p = q;
    } else {
        const char *q = p;
        if (word(&q, "IF") && word(&q, "EXISTS"))
            p = q;
    }
    /* until the column is read: an ADD nobody can read runs once (as before), the others wait */
    c->kind = kind == CL_ADD ? CL_OTHER : CL_UNREAD;
    if (!ident(&p, c->col, sizeof c->col, mode))
        return;
    if (change) {
        char to[256];
        if (!ident(&p, to, sizeof to, mode))
            return;
        if (strcmp(to, c->col) != 0) {
            c->kind = CL_RENAME;
            return;
        }
    }
    if (kind == CL_DROP) {
        (void)(word(&p, "RESTRICT") || word(&p, "CASCADE"));
        if (!*p)
            c->kind = CL_DROP;
        return;
    }
    if (!*p)
        return;
    c->def = p;
    c->kind = kind;
}

/* ---- optimistic: column definitions compared ------------------------------------------------- */

/* One token of a column definition in mode: a word (letters, digits, _ and $), a string (its text
 * without the quotes: '' and, without NO_BACKSLASH_ESCAPES, \x read as x), a quoted name, or one
 * other character. Returns 'w', 's', 'q', 'p', or 0 at the end; its text in out, its first byte
 * in *at. */
static int def_tok(const char **p, char *out, size_t n, unsigned mode, const char **at)
{
    const char *s = *p;
    size_t k = 0;
    int kind;
    while (*s == ' ')
        s++;
    *at = s;
#define PUT(ch) do { if (k + 1 < n) out[k++] = (ch); } while (0)
    if (!*s) {
        kind = 0;
    } else if (ident_char((unsigned char)*s)) {
        while (ident_char((unsigned char)*s))
            PUT(*s++);
        kind = 'w';
    } else if (*s == '\'' || *s == '"' || *s == '`') {
        char q = *s++;
        int name = q == '`' || (q == '"' && (mode & SL_DDLM_ANSI_QUOTES));
        int bs = !name && !(mode & SL_DDLM_NO_BACKSLASH_ESCAPES);
        for (; *s; s++) {
            if (bs && *s == '\\' && s[1]) {
                s++;
                PUT(*s);
            } else if (*s == q && s[1] == q) {
                s++;
                PUT(q);
            } else if (*s == q) {
                break;
            } else {
                PUT(*s);
            }
        }
        if (*s)
            s++;
        kind = name ? 'q' : 's';
    } else {
        PUT(*s++);
        kind = 'p';
    }
#undef PUT
    out[k] = '\0';
    *p = s;
    return kind;
}

/* A column definition cut into what the shards' join compares: the type, its signedness, its
 * NULL-ness, its DEFAULT, its character set and collation, and the rest. */
typedef struct coldef {
    char name[32];          /* the type, lower case, synonyms as their type (integer: int) */
    char params[1024];      /* between its parentheses, spaces out, a string quoted again
                               with its quotes doubled ("" if none) */
    long a, b;              /* (a) or (a,b) when numbers; -1 when absent */
    int  is_unsigned, zerofill;
    int  null;              /* 1 NULL, 0 NOT NULL, -1 not said */
    int  has_dflt;          /* a DEFAULT other than NULL */
    char dflt[256];         /* its value: a string's text, a number, a function lower case */
    char charset[64], collate[64];
    char rest[512];         /* the other attributes, lower case but strings (no COMMENT) */
    char nopos[1024];       /* the definition as written but its position (FIRST, AFTER c) */
    size_t attrs;           /* where the attributes start in nopos (after the type) */
} coldef;

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Append pre, v and post to the string b of n bytes, as much as fits. */
static void addf(char *b, size_t n, const char *pre, const char *v, const char *post)
{
    size_t l = strlen(b);
    for (const char *part[3] = { pre, v, post }, **q = part; q < part + 3; q++)
        for (const char *c = *q; *c && l + 1 < n; c++)
            b[l++] = *c;
    b[l] = '\0';
}

/* now(), localtimestamp... are current_timestamp (SHOW CREATE prints current_timestamp()). */
static void fn_name(char *w)
{
    if (!strcmp(w, "now") || !strcmp(w, "localtime") || !strcmp(w, "localtimestamp") ||
        !strcmp(w, "current_timestamp"))
        strcpy(w, "current_timestamp");
}

/* A value after DEFAULT (or ON UPDATE) into out: a string's text, a signed number, a function
 * (lower case, "()" left out, its precision kept), an expression in parentheses as written. */
static void def_value(const char **p, unsigned mode, char *out, size_t n, int *is_null)
{
    char t[256];
    const char *at, *save;
    int k = def_tok(p, t, sizeof t, mode, &at);
    out[0] = '\0';
    *is_null = 0;
    if (k == 'p' && (t[0] == '-' || t[0] == '+')) {
        char num[256];
        save = *p;
        if (def_tok(p, num, sizeof num, mode, &at) == 'w') {
            snprintf(out, n, "%s%.254s", t[0] == '-' ? "-" : "", num);
            save = *p;
            if (def_tok(p, t, sizeof t, mode, &at) == 'p' && t[0] == '.' &&
                def_tok(p, num, sizeof num, mode, &at) == 'w')
                addf(out, n, ".", num, "");
            else
                *p = save;
        } else {
            *p = save;
        }
        return;
    }
    if (k == 'p' && t[0] == '(') {
        int depth = 1;
        snprintf(out, n, "(");
        while (depth > 0 && (k = def_tok(p, t, sizeof t, mode, &at)) != 0) {
            depth += k == 'p' && t[0] == '(' ? 1 : k == 'p' && t[0] == ')' ? -1 : 0;
            if (k != 's')
                lower(t);
            addf(out, n, k == 's' ? "'" : "", t, k == 's' ? "'" : "");
        }
        return;
    }
    if (k == 'w' && t[0] == '_') {      /* a character set introducer: _utf8mb4'x' */
        save = *p;
        if (def_tok(p, t, sizeof t, mode, &at) != 's')
            *p = save;
        else
            k = 's';
    }
    if (k == 's') {
        snprintf(out, n, "%s", t);
        return;
    }
    if (k != 'w')
        return;
    lower(t);
    if (!strcmp(t, "null")) {
        *is_null = 1;
        return;
    }
    fn_name(t);
    snprintf(out, n, "%s", t);
    save = *p;
    char u[256];
    int k2 = def_tok(p, u, sizeof u, mode, &at);
    if (k2 == 'p' && u[0] == '.' && def_tok(p, u, sizeof u, mode, &at) == 'w') {
        addf(out, n, ".", u, "");       /* 1.5 */
    } else if (k2 == 'p' && u[0] == '(') {
        /* a function: current_timestamp() is current_timestamp, current_timestamp(6) keeps 6 */
        char inner[64] = "";
        while ((k2 = def_tok(p, u, sizeof u, mode, &at)) != 0 && !(k2 == 'p' && u[0] == ')'))
            addf(inner, sizeof inner, "", u, "");
        if (*inner)
            addf(out, n, "(", inner, ")");
    } else {
        *p = save;
    }
}

static const char *const type_alias[][2] = {
    { "integer", "int" }, { "int4", "int" }, { "int1", "tinyint" }, { "int2", "smallint" },
    { "int3", "mediumint" }, { "middleint", "mediumint" }, { "int8", "bigint" },
    { "dec", "decimal" }, { "numeric", "decimal" }, { "fixed", "decimal" },
    { "real", "double" }, { "float8", "double" }, { "float4", "float" },
    { "character", "char" }, { "nchar", "char" }, { "nvarchar", "varchar" },
};

static int coldef_parse(const char *d, unsigned mode, coldef *c)
{
    memset(c, 0, sizeof *c);
    c->a = c->b = -1;
    c->null = -1;
    if (strlen(d) >= sizeof c->nopos)
        return -1;
    char t[256];
    const char *p = d, *at, *pos_at = NULL, *pos_end = NULL;
    if (def_tok(&p, t, sizeof t, mode, &at) != 'w')
        return -1;
    lower(t);
    if (!strcmp(t, "national") && def_tok(&p, t, sizeof t, mode, &at) == 'w')
        lower(t);
    snprintf(c->name, sizeof c->name, "%.31s", t);
    for (size_t i = 0; i < sizeof type_alias / sizeof *type_alias; i++)
        if (!strcmp(c->name, type_alias[i][0]))
            snprintf(c->name, sizeof c->name, "%s", type_alias[i][1]);
    /* two words: DOUBLE PRECISION, CHAR[ACTER] VARYING */
    const char *save = p;
    char u[64];
    int two = def_tok(&p, u, sizeof u, mode, &at) == 'w';
    if (two && !strcmp(c->name, "char") && !strcasecmp(u, "varying"))
        snprintf(c->name, sizeof c->name, "varchar");
    else if (!two || strcmp(c->name, "double") || strcasecmp(u, "precision"))
        p = save;
    while (*p == ' ')
        p++;
    if (*p == '(') {
        int depth = 0, k;
        do {
            k = def_tok(&p, t, sizeof t, mode, &at);
            depth += k == 'p' && t[0] == '(' ? 1 : k == 'p' && t[0] == ')' ? -1 : 0;
            if (depth > 0 && !(k == 'p' && t[0] == '(' && depth == 1)) {
                if (k != 's') {
                    addf(c->params, sizeof c->params, "", t, "");
                    continue;
                }
                /* a string (an ENUM or SET member) as 'text' with its quotes doubled: one
                 * rendering for each list, so two lists compare member by member */
                addf(c->params, sizeof c->params, "'", "", "");
                for (const char *q = t; *q; q++)
                    addf(c->params, sizeof c->params, *q == '\'' ? "'" : "", (char[2]){ *q, 0 }, "");
                addf(c->params, sizeof c->params, "'", "", "");
            }
        } while (k && depth > 0);
        if (depth || strlen(c->params) + 1 >= sizeof c->params)
            return -1;              /* or cut: read as what it is not */
        char *end;
        c->a = strtol(c->params, &end, 10);
        if (end == c->params)
            c->a = -1;
        else if (*end == ',')
            c->b = strtol(end + 1, NULL, 10);
    }
    size_t attrs = (size_t)(p - d);
    for (int k; (k = def_tok(&p, t, sizeof t, mode, &at)) != 0;) {
        if (k != 'w') {
            addf(c->rest, sizeof c->rest, k == 's' ? " '" : k == 'q' ? " `" : " ", t,
                 k == 's' ? "'" : k == 'q' ? "`" : "");
            continue;
        }
        lower(t);
        int is_null;
        if (!strcmp(t, "unsigned")) {
            c->is_unsigned = 1;
        } else if (!strcmp(t, "signed")) {
            c->is_unsigned = 0;
        } else if (!strcmp(t, "zerofill")) {
            c->zerofill = c->is_unsigned = 1;
        } else if (!strcmp(t, "null")) {
            c->null = 1;
        } else if (!strcmp(t, "not")) {
            save = p;
            if (def_tok(&p, u, sizeof u, mode, &at) == 'w' && !strcasecmp(u, "null"))
                c->null = 0;
            else {
                p = save;
                addf(c->rest, sizeof c->rest, " ", t, "");
            }
        } else if (!strcmp(t, "default")) {
            def_value(&p, mode, c->dflt, sizeof c->dflt, &is_null);
            c->has_dflt = !is_null;
        } else if (!strcmp(t, "comment")) {
            def_tok(&p, u, sizeof u, mode, &at);
        } else if (!strcmp(t, "first") || !strcmp(t, "after")) {
            pos_at = at;
            if (!strcmp(t, "after"))
                def_tok(&p, u, sizeof u, mode, &at);
            pos_end = p;
        } else if (!strcmp(t, "character") || !strcmp(t, "charset")) {
            if (!strcmp(t, "character"))
                def_tok(&p, u, sizeof u, mode, &at);            /* SET */
            def_tok(&p, c->charset, sizeof c->charset, mode, &at);
            lower(c->charset);
        } else if (!strcmp(t, "collate")) {
            def_tok(&p, c->collate, sizeof c->collate, mode, &at);
            lower(c->collate);
        } else if (!strcmp(t, "update") && strlen(c->rest) >= 3 && !strcmp(c->rest + strlen(c->rest) - 3, " on")) {
            char v[256];
            def_value(&p, mode, v, sizeof v, &is_null);
            addf(c->rest, sizeof c->rest, " update ", v, "");
        } else {
            addf(c->rest, sizeof c->rest, " ", t, "");
        }
    }
    /* the definition without its position: what a MODIFY of the merged column repeats */
    size_t cut = pos_at ? (size_t)(pos_at - d) : strlen(d);
    snprintf(c->nopos, sizeof c->nopos, "%.*s%s", (int)cut, d, pos_end ? pos_end : "");
    size_t l = strlen(c->nopos);
    while (l && c->nopos[l - 1] == ' ')
        c->nopos[--l] = '\0';
    c->attrs = attrs < l ? attrs : l;
    return 0;
}

static int int_rank(const char *t)
{
    static const char *const r[] = { "tinyint", "smallint", "mediumint", "int", "bigint", NULL };
    for (int i = 0; r[i]; i++)
        if (!strcmp(t, r[i]))
            return i + 1;
    return 0;
}

/* The rank of t among the TEXT or the BLOB types (tinytext < text < mediumtext < longtext). */
static int lob_rank(const char *t, const char *family)
{
    static const char *const pre[] = { "tiny", "", "medium", "long" };
    char n[32];
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s%s", pre[i], family);
        if (!strcmp(t, n))
            return i + 1;
    }
    return 0;
}

/* Integers: does a (rank ra, unsigned ua) hold every value of b? */
static int int_holds(int ra, int ua, int rb, int ub)
{
    return (ua == ub && ra >= rb) || (!ua && ub && ra > rb);
}

static int numeric(const char *t)
{
    return int_rank(t) || !strcmp(t, "decimal") || !strcmp(t, "float") || !strcmp(t, "double") ||
           !strcmp(t, "bit");
}

/* The kind of values a type holds: numbers, text or bytes, times, or its own (0). */
static int family(const char *t)
{
    static const char *const f[][12] = {
        { "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "bit", NULL },
        { "char", "varchar", "binary", "varbinary", "tinytext", "text", "mediumtext", "longtext",
          "tinyblob", "blob", "mediumblob", "longblob" },
        { "date", "time", "datetime", "timestamp", "year", NULL },
    };
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 12 && f[i][k]; k++)
            if (!strcmp(t, f[i][k]))
                return i + 1;
    return 0;
}

enum { J_SAME, J_NARROWER, J_WIDER, J_CONFLICT };

/*
 * How definition b (a shard's, read in mode mb) stands against a (the merged column's, in ma),
 * as DM's optimistic mode joins them: J_SAME (the same column written otherwise: INT, int(11)
 * and INT NULL DEFAULT NULL are one), J_NARROWER (a holds every value of b: nothing to do),
 * J_WIDER (the merged column must take out, a definition that holds both: b itself, or a new
 * DECIMAL), or J_CONFLICT with why. Integers of one signedness take the larger type, and a
 * signed one holds a smaller unsigned one (BIGINT holds INT UNSIGNED); CHAR, VARCHAR, BINARY,
 * VARBINARY the larger length of the same type; TEXT and BLOB types the larger one; ENUM and SET
 * the longer member list when the other list begins it ('a','b' and 'a','b','c'); DECIMAL the
 * most integer digits and the most decimals; TIME, DATETIME and TIMESTAMP the most fractional
 * digits. What follows the type (NULL-ness, DEFAULT, character set, the rest) must be the same;
 * COMMENT and the position do not count.
 */
static int def_join(const char *a, unsigned ma, const char *b, unsigned mb, char *out, size_t n,
                    char *why, size_t wn)
{
    coldef x, y;
    if (coldef_parse(a, ma, &x) < 0 || coldef_parse(b, mb, &y) < 0) {
        snprintf(why, wn, "a definition the coordinator cannot read");
        return J_CONFLICT;
    }
    int ab = 0, ba = 0;         /* a holds b, b holds a */
    int ra = int_rank(x.name), rb = int_rank(y.name);
    static const char *const str[] = { "char", "varchar", "binary", "varbinary", NULL };
    int is_str = 0;
    for (int i = 0; str[i]; i++)
        is_str |= !strcmp(x.name, str[i]) && !strcmp(y.name, str[i]);
    int ta = lob_rank(x.name, "text"), tb = lob_rank(y.name, "text");
    int la = lob_rank(x.name, "blob"), lb = lob_rank(y.name, "blob");
    int dec = !strcmp(x.name, "decimal") && !strcmp(y.name, "decimal");
    int fsp = !strcmp(x.name, y.name) && (!strcmp(x.name, "time") || !strcmp(x.name, "datetime") ||
                                          !strcmp(x.name, "timestamp"));
    if (x.zerofill != y.zerofill) {
        snprintf(why, wn, "ZEROFILL on one side only");
        return J_CONFLICT;
    }
    if (ra && rb) {
        ab = int_holds(ra, x.is_unsigned, rb, y.is_unsigned);
        ba = int_holds(rb, y.is_unsigned, ra, x.is_unsigned);
        if (!ab && !ba) {
            snprintf(why, wn, "%s against %s: neither type holds the other's values",
                     x.is_unsigned ? "unsigned" : "signed", y.is_unsigned ? "unsigned" : "signed");
            return J_CONFLICT;
        }
    } else if (x.is_unsigned != y.is_unsigned) {
        snprintf(why, wn, "signed against unsigned: neither type holds the other's values");
        return J_CONFLICT;
    } else if (is_str || fsp) {
        long na = x.a < 0 ? (fsp ? 0 : 1) : x.a, nb = y.a < 0 ? (fsp ? 0 : 1) : y.a;
        ab = na >= nb;
        ba = nb >= na;
    } else if ((ta && tb) || (la && lb)) {
        ab = ta + la >= tb + lb;
        ba = tb + lb >= ta + la;
    } else if (dec) {
        long px = x.a < 0 ? 10 : x.a, sx = x.b < 0 ? 0 : x.b;
        long py = y.a < 0 ? 10 : y.a, sy = y.b < 0 ? 0 : y.b;
        ab = px - sx >= py - sy && sx >= sy;
        ba = py - sy >= px - sx && sy >= sx;
        if (!ab && !ba) {
            long ints = px - sx > py - sy ? px - sx : py - sy, sc = sx > sy ? sx : sy;
            if (ints + sc > 65) {
                snprintf(why, wn, "no DECIMAL holds both (more than 65 digits)");
                return J_CONFLICT;
            }
            /* the join is neither: DECIMAL(12,2) and DECIMAL(10,4) give DECIMAL(14,4) */
            char t[1100];
            snprintf(t, sizeof t, "DECIMAL(%ld,%ld)%s%s", ints + sc, sc, y.nopos[y.attrs] ? " " : "",
                     y.nopos + y.attrs + (y.nopos[y.attrs] == ' '));
            snprintf(out, n, "%s", t);
        }
    } else if ((!strcmp(x.name, "enum") || !strcmp(x.name, "set")) && !strcmp(x.name, y.name)) {
        /* members: one list holds the other when it starts with it (DM's join, where members
         * are only appended); the same member in another case is another value */
        size_t lx = strlen(x.params), ly = strlen(y.params);
        ab = lx >= ly && !memcmp(x.params, y.params, ly) && (lx == ly || x.params[ly] == ',');
        ba = ly >= lx && !memcmp(y.params, x.params, lx) && (ly == lx || y.params[lx] == ',');
        if (!ab && !ba) {
            snprintf(why, wn, "%s(%.100s) against %s(%.100s): neither member list starts with "
                     "the other", x.name, x.params, y.name, y.params);
            return J_CONFLICT;
        }
    } else if (!strcmp(x.name, y.name) && !strcasecmp(x.params, y.params)) {
        ab = ba = 1;
    } else if (!strcmp(x.name, y.name)) {
        snprintf(why, wn, "%s(%.100s) against %s(%.100s), which the coordinator does not join",
                 x.name, x.params, y.name, y.params);
        return J_CONFLICT;
    } else if (family(x.name) == family(y.name)) {
        snprintf(why, wn, "another type (%s against %s): the coordinator widens a type only to a "
                 "larger one of the same kind", x.name, y.name);
        return J_CONFLICT;
    } else {
        snprintf(why, wn, "another type family (%s against %s): neither type holds the other's values",
                 x.name, y.name);
        return J_CONFLICT;
    }
    /* what follows the type */
    int nx = x.null, ny = y.null;
    if (!strcmp(x.name, "timestamp") && (nx < 0 || ny < 0))
        nx = ny = 1;            /* a TIMESTAMP's NULL-ness unsaid follows the server's settings */
    if ((nx != 0) != (ny != 0)) {
        snprintf(why, wn, "another nullability (%s against %s)", nx ? "NULL" : "NOT NULL",
                 ny ? "NULL" : "NOT NULL");
        return J_CONFLICT;
    }
    int same_dflt = x.has_dflt == y.has_dflt;
    if (same_dflt && x.has_dflt) {
        char *ex, *ey;
        double vx = strtod(x.dflt, &ex), vy = strtod(y.dflt, &ey);
        same_dflt = numeric(x.name) && *x.dflt && *y.dflt && !*ex && !*ey ? vx == vy
                                                                         : !strcmp(x.dflt, y.dflt);
    }
    if (!same_dflt) {
        snprintf(why, wn, "another DEFAULT (%.100s against %.100s)", x.has_dflt ? x.dflt : "none",
                 y.has_dflt ? y.dflt : "none");
        return J_CONFLICT;
    }
    if ((*x.charset && *y.charset && strcmp(x.charset, y.charset)) ||
        (*x.collate && *y.collate && strcmp(x.collate, y.collate))) {
        snprintf(why, wn, "another character set or collation");
        return J_CONFLICT;
    }
    if (strcmp(x.rest, y.rest) != 0) {
        snprintf(why, wn, "other column attributes (%.100s against %.100s)", *x.rest ? x.rest + 1 : "none",
                 *y.rest ? y.rest + 1 : "none");
        return J_CONFLICT;
    }
    if (ab && ba)
        return J_SAME;
    if (ab)
        return J_NARROWER;
    if (ba)
        snprintf(out, n, "%s", y.nopos);
    return J_WIDER;
}

/* ---- optimistic: the decisions ---------------------------------------------------------------- */

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

/* "DROP COLUMN `col`": a pending drop's clause, in no session's sql_mode (another shard's
 * subtask may run it, leave_join), appended to b. */
static void drop_sql(sl_sbuf *b, const char *col)
{
    sl_sbuf_adds(b, "DROP COLUMN ");
    sl_sbuf_add_ident(b, col);
}

/* The release by hand of the pending drops (sl_shard_unlock with exec 0): "by" names no shard. */
#define RELEASED "(released by hand)"

/* One shard's DDL being decided. */
typedef struct join_ctx {
    sl_worker  *w;
    json_t     *q, *rec;
    const char *task, *source, *target, *me;
    unsigned    mode;
    int         strict, ignore;   /* ignore: ALTER IGNORE TABLE, kept in a statement built */
    json_t     *tcols;          /* the target's columns as it has them now: name -> definition */
    json_t     *members;        /* the group, listed once per request (a new pending drop) */
    sl_sbuf     run;            /* the clauses this shard runs on the target, ", " between */
    int         nrun, ncoord;   /* how many run; how many clauses are not ALGORITHM/LOCK */
    int         generated;      /* a clause to run is not this shard's text */
    int         conflict;
    char        why[1536];
    char       *other;          /* the statement a conflict is with (malloc'd), if another's */
} join_ctx;

static void run_clause(join_ctx *j, const char *cl, int generated)
{
    if (j->nrun++)
        sl_sbuf_adds(&j->run, ", ");
    sl_sbuf_adds(&j->run, cl);
    j->generated |= generated;
}

/* A clause that conflicts: why, and the statement of another shard it conflicts with (NULL
 * when it is with the target as it is). The first one tells. */
static void conflict_with(join_ctx *j, const char *other, const char *why)
{
    if (j->conflict++)
        return;
    snprintf(j->why, sizeof j->why, "%.1500s", why);
    j->other = other ? strdup(other) : NULL;
}

/* "ALTER TABLE <target> <clause>", malloc'd: how a clause shows in the records and messages. */
static char *stmt_of(const char *target, const char *cl)
{
    char *s = malloc(strlen(target) + strlen(cl) + 16);
    if (s)
        sprintf(s, "ALTER TABLE %s %s", target, cl);
    return s;
}

/*
 * ADD or MODIFY COLUMN c (clause text cl). The column's definition now is the last one recorded
 * (MODIFY, else ADD), else the target's: this shard's against it runs when it widens the column
 * (its own clause when it is the join, else a MODIFY to the join), changes nothing when the
 * column holds it already (narrower or the same: a shard that narrows a column must not clamp
 * the other shards' values), and is a conflict otherwise. A column nobody knows (a new one) is
 * added by the first shard. With strict, a shard that narrows, or one that widens what another
 * shard changed, is a conflict too. The shard that ran a decision gets it again (a restart).
 */
static int col_clause(join_ctx *j, const clause *c, const char *cl)
{
    json_t *own = obj_at(j->rec, c->kind == CL_ADD ? "add" : "modify");
    json_t *e = json_object_get(own, c->col);
    const char *from = json_object_get(e, "from") ? jstr(e, "from") : jstr(e, "def");
    if (e && !strcmp(jstr(e, "by"), j->me) && !strcmp(from, c->def) &&
        json_integer_value(json_object_get(e, "mode")) == (json_int_t)j->mode) {
        const char *g = jstr(e, "clause");
        run_clause(j, *g ? g : cl, *g != 0);
        return 0;
    }
    json_t *drop = json_object_get(json_object_get(j->rec, "drop"), c->col);
    if (c->kind == CL_ADD && drop && json_object_get(drop, "by")) {
        json_object_del(json_object_get(j->rec, "drop"), c->col);     /* a drop of the past */
    } else if (c->kind == CL_ADD && drop) {
        /* a shard that adds back a column it dropped is no longer one of the drop's */
        json_t *x;
        size_t i;
        json_array_foreach(json_object_get(drop, "dropped"), i, x)
            if (!strcmp(json_string_value(x), j->me)) {
                json_array_remove(json_object_get(drop, "dropped"), i);
                break;
            }
    }
    json_t *rec_e = json_object_get(json_object_get(j->rec, "modify"), c->col);
    if (!rec_e)
        rec_e = json_object_get(json_object_get(j->rec, "add"), c->col);
    const char *base = rec_e ? jstr(rec_e, "def") : json_string_value(json_object_get(j->tcols, c->col));
    unsigned bmode = rec_e ? (unsigned)json_integer_value(json_object_get(rec_e, "mode")) : 0;
    char *stmt = stmt_of(j->target, cl);
    if (!stmt)
        return SL_ENOMEM;
    if (!base) {
        /* a column neither the records nor the target know: the first shard adds it */
        json_object_set_new(own, c->col, json_pack("{s:s,s:I,s:s,s:s}", "def", c->def, "mode",
                                                   (json_int_t)j->mode, "ddl", stmt, "by", j->me));
        run_clause(j, cl, 0);
        free(stmt);
        return 0;
    }
    char joined[1100] = "", why[600] = "", msg[2200];
    int rel = def_join(base, bmode, c->def, j->mode, joined, sizeof joined, why, sizeof why);
    if (rel == J_CONFLICT && rec_e) {
        conflict_with(j, jstr(rec_e, "ddl"), why);
    } else if (rel == J_CONFLICT) {
        /* with the merged table as it is */
        snprintf(msg, sizeof msg, "the merged table's column `%s` is %.1000s: %s", c->col, base, why);
        conflict_with(j, NULL, msg);
    } else if (rel == J_NARROWER && j->strict) {
        snprintf(msg, sizeof msg, "strict_optimistic_shard_mode: this shard narrows column `%s`, "
                 "and a narrower type is not run on the merged table, whose column is %.1000s "
                 "(the other shards' values may need it)", c->col, base);
        conflict_with(j, NULL, msg);
    } else if (rel == J_WIDER && j->strict && rec_e) {
        conflict_with(j, jstr(rec_e, "ddl"), "the same column with another definition "
                      "(strict_optimistic_shard_mode does not widen types)");
    } else if (rel == J_WIDER) {
        /* the target takes the join: this shard's own MODIFY when it is the join, else a MODIFY
         * to it, recorded with who ran it from what */
        char *gen = NULL;
        if (c->kind != CL_MODIFY || strcmp(joined, c->def) != 0) {
            sl_sbuf b;
            sl_sbuf_init(&b);
            sl_sbuf_adds(&b, "MODIFY COLUMN ");
            sl_sbuf_add_ident(&b, c->col);
            sl_sbuf_adds(&b, " ");
            sl_sbuf_adds(&b, joined);
            gen = b.oom ? NULL : b.p;
            if (!gen) {
                sl_sbuf_free(&b);
                free(stmt);
                return SL_ENOMEM;
            }
        }
        char *gstmt = gen ? stmt_of(j->target, gen) : NULL;
        json_object_set_new(own, c->col, json_pack("{s:s,s:I,s:s,s:s,s:s,s:s?}", "def", joined, "mode",
                                                   (json_int_t)j->mode, "ddl", gstmt ? gstmt : stmt,
                                                   "by", j->me, "from", c->def, "clause", gen));
        run_clause(j, gen ? gen : cl, gen != NULL);
        sl_log(SL_LOG_INFO, "shard", "optimistic %s: column %s widens to %s", j->target, c->col, joined);
        free(gstmt);
        free(gen);
    }   /* else the merged column holds this shard's values already: nothing to run */
    free(stmt);
    return 0;
}

/* DROP COLUMN c: kept until every shard of the group dropped it; the last one runs it. */
static int drop_clause(join_ctx *j, const clause *c, const char *cl, sl_error *err)
{
    json_t *d = obj_at(j->rec, "drop"), *e = json_object_get(d, c->col);
    if (!e) {
        if (!j->members) {
            const char *ts = jstr(j->q, "target_schema"), *tt = jstr(j->q, "target_table");
            const sl_task_plan *plan = plan_of(j->w, j->task);
            json_t *ms = plan ? members(plan, ts, tt, err) : NULL, *x;
            if (!ms)
                return plan ? (err->code ? err->code : SL_ENOMEM)
                            : sl_error_set(err, SL_ESTATE, "task %s is not known to the worker", j->task);
            j->members = json_array();
            size_t i;
            json_array_foreach(ms, i, x) {
                char *n = qname(jstr(x, "schema"), jstr(x, "table"));
                char full[1400];
                snprintf(full, sizeof full, "%s:%s", jstr(x, "source"), n ? n : "");
                free(n);
                json_array_append_new(j->members, json_string(full));
            }
            json_decref(ms);
        }
        sl_sbuf b;
        sl_sbuf_init(&b);
        sl_sbuf_adds(&b, "ALTER TABLE ");
        sl_sbuf_adds(&b, j->target);
        sl_sbuf_adds(&b, " ");
        drop_sql(&b, c->col);
        /* where it began, as a pessimistic lock shows it: "<source> `s`.`t` (file, pos)" */
        char loc[2300];
        snprintf(loc, sizeof loc, "%s `%s`.`%s` (%s, %llu)", j->source, jstr(j->q, "schema"),
                 jstr(j->q, "table"), jstr(j->q, "file"),
                 (unsigned long long)json_integer_value(json_object_get(j->q, "pos")));
        e = b.oom ? NULL : json_pack("{s:o,s:[],s:s,s:s}", "members", json_deep_copy(j->members),
                                     "dropped", "ddl", b.p, "first_location", loc);
        sl_sbuf_free(&b);
        if (!e)
            return SL_ENOMEM;
        json_object_set_new(d, c->col, e);
    }
    json_t *dropped = json_object_get(e, "dropped");
    if (!in_list(dropped, j->me))
        json_array_append_new(dropped, json_string(j->me));
    json_t *mem = json_object_get(e, "members");
    if (!in_list(mem, j->me))
        json_array_append_new(mem, json_string(j->me));
    drop_claim(j->rec, c->col, e, j->me);
    if (!strcmp(jstr(e, "by"), j->me))
        run_clause(j, cl, 0);
    return 0;
}

/* Another change (an index, a table option): once, at the first shard; strict: a conflict. */
static int other_clause(join_ctx *j, const char *stmt, const char *cl)
{
    if (j->strict) {
        char msg[600];
        snprintf(msg, sizeof msg, "strict_optimistic_shard_mode coordinates only ADD, DROP and "
                 "MODIFY COLUMN (and ALGORITHM=, LOCK=), not \"%.300s\"", cl);
        conflict_with(j, NULL, msg);
        return 0;
    }
    json_t *o = obj_at(j->rec, "other");
    const char *by = jstr(json_object_get(o, stmt), "by");
    if (!*by)
        json_object_set_new(o, stmt, json_pack("{s:s}", "by", j->me));
    if (!*by || !strcmp(by, j->me))
        run_clause(j, cl, 0);
    return 0;
}

/* The target's columns from its SHOW CREATE TABLE text: {name (lower case): definition}. */
static json_t *target_columns(const char *create)
{
    json_t *o = json_object();
    for (const char *l = create; o && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, "  `", 3) != 0)
            continue;
        const char *p = l + 2, *e = strchr(l, '\n');
        char name[256];
        if (!ident(&p, name, sizeof name, 0))
            continue;
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (p[n - 1] == ',' || p[n - 1] == ' ' || p[n - 1] == '\r'))
            n--;
        char *def = strndup(p, n);
        if (def)
            json_object_set_new(o, name, json_string(def));
        free(def);
    }
    return o;
}

/* Decide every clause of ddl (the shard's text, in j->mode) into j. */
static int decide(join_ctx *j, const char *ddl, sl_error *err)
{
    sl_ddl_alter a;
    int rc = sl_ddl_alter_split(ddl, strlen(ddl), j->mode, &a);
    if (rc == SL_ENOMEM)
        return rc;
    if (rc != 0 || !a.nclauses) {
        /* not an ALTER TABLE (CREATE or DROP INDEX): one change, as written */
        sl_ddl_alter_free(&a);
        char *n = norm_ddl(ddl);
        if (!n)
            return SL_ENOMEM;
        j->ncoord = 1;
        rc = other_clause(j, n, ddl);
        free(n);
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < a.nclauses; i++) {
        clause c;
        classify(a.clauses[i], j->mode, &c);
        j->ncoord += c.kind != CL_OPTION;
        if (c.kind == CL_ADD || c.kind == CL_MODIFY) {
            rc = col_clause(j, &c, a.clauses[i]);
        } else if (c.kind == CL_DROP) {
            rc = drop_clause(j, &c, a.clauses[i], err);
        } else if (c.kind == CL_RENAME) {
            conflict_with(j, NULL, "renaming a column of a merged table is not coordinated in "
                          "optimistic mode (the other shards' rows would name the old column)");
        } else if (c.kind == CL_UNREAD) {
            char msg[600];
            snprintf(msg, sizeof msg, "the coordinator cannot read which column \"%.300s\" "
                     "changes, so it cannot tell when every shard has run it", a.clauses[i]);
            conflict_with(j, NULL, msg);
        } else if (c.kind == CL_OTHER) {
            char *stmt = stmt_of(j->target, a.clauses[i]);
            rc = stmt ? other_clause(j, stmt, a.clauses[i]) : SL_ENOMEM;
            free(stmt);
        }
    }
    j->ignore = a.ignore;
    sl_ddl_alter_free(&a);
    return rc;
}

/*
 * A DDL of a shard in optimistic mode: the target follows the join of the shards' structures,
 * clause by clause (above). ADD COLUMN runs at the first shard; MODIFY COLUMN when it widens the
 * column (its definition against the recorded one, else against the target's, which the sink
 * sends as "target_create": SHOW CREATE TABLE); DROP COLUMN at the last shard of the group that
 * drops it; RENAME/CHANGE COLUMN is a conflict; another change runs once, at the first shard,
 * unless strict (then a conflict). The reply: "execute" (with "sql" when what runs is not the
 * shard's statement as written: a part of it, or a MODIFY to the join), "skip" or "conflict"
 * ("why", and "ddl" when it is with another shard's statement); a conflict changes no record.
 * The decisions are kept, so a shard that reads its DDL again after a restart gets the same
 * answer ("execute" again for the shard that ran it: the sink's pending-DDL marker makes that
 * exact).
 */
static int join(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                sl_error *err)
{
    const char *ts = jstr(q, "target_schema"), *tt = jstr(q, "target_table");
    char *target = qname(ts, tt), *key = NULL;
    char *shard = qname(jstr(q, "schema"), jstr(q, "table"));
    json_t *r = NULL;
    join_ctx j = { .w = w, .q = q, .task = task, .source = source, .target = target,
                   .mode = (unsigned)json_integer_value(json_object_get(q, "ddl_mode")),
                   .strict = json_is_true(json_object_get(q, "strict")),
                   .tcols = target_columns(jstr(q, "target_create")) };
    sl_sbuf_init(&j.run);
    int rc = SL_ENOMEM;
    if (!target || !shard || !j.tcols || !(key = rec_key(task, target)))
        goto out;
    char me[1400];
    snprintf(me, sizeof me, "%s:%s", source, shard);
    j.me = me;
    j.rec = rec_load(w, "shard_join", key);
    if (!j.rec && !(j.rec = json_pack("{s:s}", "target", target)))
        goto out;
    const char *ddl = jstr(q, "ddl");
    if ((rc = decide(&j, ddl, err)) != 0)
        goto out;
    const char *action = j.conflict ? "conflict" : j.nrun ? "execute" : "skip";
    rc = SL_ENOMEM;
    if (j.run.oom)
        goto out;
    /* a conflict decides nothing of the statement's other clauses: the record stays as it was */
    if (!j.conflict && (rc = rec_save(w, "shard_join", key, j.rec, err)) != 0)
        goto out;
    sl_log(SL_LOG_INFO, "shard", "optimistic %s %s: %s (%s)", target, me, action, ddl);
    r = json_pack("{s:s,s:s}", "action", action, "id", key);
    if (r && j.conflict && j.other)
        json_object_set_new(r, "ddl", json_string(j.other));
    if (r && j.conflict)
        json_object_set_new(r, "why", json_string(j.why));
    if (r && !j.conflict && j.nrun && (j.generated || j.nrun < j.ncoord)) {
        /* a part of the statement, or another statement: one ALTER of what this shard runs */
        char *s = malloc(strlen(target) + j.run.len + 32);
        if (s)
            sprintf(s, "ALTER %sTABLE %s %s", j.ignore ? "IGNORE " : "", target, j.run.p);
        json_object_set_new(r, "sql", s ? json_string(s) : NULL);
        free(s);
    }
    *reply = r ? reply_of(r) : NULL;
    r = NULL;
    rc = *reply ? 0 : SL_ENOMEM;
out:
    if (rc == SL_ENOMEM && !err->code)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    json_decref(j.rec);
    json_decref(j.tcols);
    json_decref(j.members);
    sl_sbuf_free(&j.run);
    free(j.other);
    json_decref(r);
    free(target);
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
                                                    json_object_get(d, "ddl"), "first_location",
                                                    jstr(d, "first_location"), "task", name,
                                                    slash ? (int)(slash - name) : 0,
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
 * it is now this shard's to run on the target: the reply's "sql" holds one statement that drops
 * every such column (the same again when the DROP TABLE is read again after a restart: "by"
 * names this shard), so that a crash leaves all of them or none.
 */
static int leave_join(sl_worker *w, const char *task, const char *source, json_t *q, char **reply,
                      sl_error *err)
{
    char *target = qname(jstr(q, "target_schema"), jstr(q, "target_table"));
    char *shard = qname(jstr(q, "schema"), jstr(q, "table")), *key = NULL;
    json_t *rec = NULL, *sql = json_array();
    int rc = SL_ENOMEM, changed = 0, ndrops = 0;
    sl_sbuf run;
    sl_sbuf_init(&run);
    if (!target || !shard || !sql || !(key = rec_key(task, target)))
        goto out;
    sl_sbuf_adds(&run, "ALTER TABLE ");
    sl_sbuf_adds(&run, target);
    sl_sbuf_adds(&run, " ");
    char me[1400];
    snprintf(me, sizeof me, "%s:%s", source, shard);
    rec = rec_load(w, "shard_join", key);
    const char *col;
    json_t *e;
    json_object_foreach(json_object_get(rec, "drop"), col, e) {
        const char *by = jstr(e, "by");
        if (!strcmp(by, me)) {
            /* claimed by this shard before a restart: the same statement again */
            sl_sbuf_adds(&run, ndrops++ ? ", " : "");
            drop_sql(&run, col);
        }
        if (*by)
            continue;
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
            sl_sbuf_adds(&run, ndrops++ ? ", " : "");
            drop_sql(&run, col);
            changed = 1;
        }
    }
    if (ndrops && !run.oom)
        json_array_append_new(sql, json_string(run.p));
    rc = run.oom ? SL_ENOMEM : changed ? rec_save(w, "shard_join", key, rec, err) : 0;
    if (rc == 0) {
        *reply = reply_of(json_pack("{s:O}", "sql", sql));
        rc = *reply ? 0 : SL_ENOMEM;
    }
out:
    if (rc == SL_ENOMEM && !err->code)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    json_decref(rec);
    json_decref(sql);
    sl_sbuf_free(&run);
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

/*
 * Optimistic: the DROP COLUMNs of a target still waiting for shards, listed under the lock id
 * "<task>-<target>" (key: "<task>/<target>"). exec 0 releases them: nothing runs, the columns
 * stay on the target (the operator drops one there when no shard needs its values), and a shard
 * that drops one later changes nothing. exec 1 is refused: no shard is held to run the drop (each
 * went on past its own), and the drop would take the column's values from the shards that never
 * dropped it, which is what waiting is for. Returns 0, SL_ENOENT (nothing waits), SL_ESTATE
 * (exec) or a store error. Call with w->shard_mu held.
 */
static int unlock_join(sl_worker *w, const char *key, const char *id, int exec, sl_error *err)
{
    int rc = SL_ENOENT, n = 0;
    for (int tries = 0; tries < TRIES; tries++) {
        json_t *rec = rec_load(w, "shard_join", key), *e;
        const char *col;
        n = 0;
        json_object_foreach(json_object_get(rec, "drop"), col, e)
            if (!json_object_get(e, "by")) {
                json_object_set_new(e, "by", json_string(RELEASED));
                n++;
            }
        if (!n)
            rc = SL_ENOENT;
        else if (exec)
            rc = sl_error_set(err, SL_ESTATE, "lock %s is an optimistic DROP COLUMN that waits for "
                              "shards which still have the column: unlock it with \"exec\": false "
                              "(the drop is released, the column stays on the target; drop it there "
                              "by hand if no shard needs its values)", id);
        else
            rc = rec_save(w, "shard_join", key, rec, err);
        json_decref(rec);
        if (rc != SL_AGAIN)
            break;
    }
    if (rc == SL_AGAIN)
        rc = sl_error_set(err, SL_ETIMEOUT, "lock %s keeps changing under other workers' writes: "
                          "try again", id);
    if (rc == 0)
        sl_log(SL_LOG_WARN, "shard", "lock %s: %d waiting DROP COLUMN released by hand (not run; "
               "the target keeps the column)", id, n);
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
    if (rc == SL_ENOENT && key)
        rc = unlock_join(w, key, id, exec, err);
    json_decref(lock);
    free(key);
    pthread_mutex_unlock(&w->shard_mu);
    if (rc == SL_ENOENT)
        sl_error_set(err, rc, "task %s has no unresolved shard DDL lock %.300s%s", task, id,
                     strlen(id) > 300 ? "..." : "");
    return rc;
}
