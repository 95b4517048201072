/*
 * runner.c - a cluster worker (issue 13): this member runs the subtasks of the sources bound to
 * it, and no others. The leader's API records sources, tasks and the operator's wishes (start,
 * stop) in etcd and runs nothing; the runner reads them, with the bindings, every RUN_POLL_MS.
 *
 * Why polling and not an etcd watch: the etcd client is plain request/response over HTTP; a
 * half-second poll costs a few small range reads and reaches "a stop on the API stops the
 * subtask within about a second" without a second protocol.
 *
 * Each subtask runs under the epoch of its source's binding (the ROOT/bound/<source> key's
 * mod_revision) as fence_epoch: a later owner has a larger one, and the target's fence row makes
 * every checkpoint (and every loaded chunk) of an older owner fail. The runner stops a source's
 * subtasks as soon as it reads that the binding moved, or that its lease is gone; the fence
 * covers the time before it reads that.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binding.h"
#include "relay.h"
#include "etcd.h"
#include "sluice/clock.h"
#include "sluice/log.h"

#define RUN_POLL_MS 500

/* One subtask this member runs: source `source` of task `task`, compiled from the stored task
 * text and the stored texts of the task's sources, under the binding epoch. */
typedef struct run_entry {
    char         *task, *source;
    char         *text, *src_text;
    long long     epoch;
    sl_task_plan *plan;
    sl_subtask   *sub;
    int           seen;
} run_entry;

typedef struct sl_runner {
    sl_api         *a;
    sl_etcd        *e;          /* bindings, releases, live status (runner thread only) */
    sl_etcd        *ew;         /* fenced stage writes (any thread, under ew_mu) */
    pthread_mutex_t ew_mu;
    sl_meta_store  *store;      /* unguarded: a worker's stage records are its own */
    sl_worker      *w;
    char           *root;
    sl_thread      *thr;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             stop;
    int             kick;       /* a stage changed: publish the live status now (under mu) */
    run_entry     **v;          /* changed under vlock (the relays' purge reads it) */
    size_t          n, cap;
    pthread_rwlock_t vlock;
    json_t         *src_raw;    /* source name -> stored text, as last read */
    sl_api_source **srcs;       /* the same, parsed, secrets opened (for the compiler) */
    size_t          nsrcs;
} sl_runner;

static void entry_free(sl_runner *r, run_entry *e, int unpublish)
{
    if (!e)
        return;
    sl_subtask_free(e->sub);   /* stops its pipeline; the stored stage stays for the next owner */
    if (unpublish) {
        char k[1024];
        snprintf(k, sizeof k, "%s/live/%s/%s", r->root, e->task, e->source);
        sl_etcd_delete(r->e, k, NULL, NULL);
    }
    sl_task_plan_free(e->plan);
    free(e->task);
    free(e->source);
    free(e->text);
    free(e->src_text);
    free(e);
}

static void drop_at(sl_runner *r, size_t i, const char *why)
{
    run_entry *e = r->v[i];
    sl_log(SL_LOG_INFO, "cluster", "worker %s stops task %s source %s: %s", r->a->opts.name,
           e->task, e->source, why);
    pthread_rwlock_wrlock(&r->vlock);
    r->v[i] = r->v[--r->n];
    pthread_rwlock_unlock(&r->vlock);
    entry_free(r, e, 1);
}

static void drop_all(sl_runner *r, const char *why)
{
    while (r->n)
        drop_at(r, r->n - 1, why);
}

static void relay_stop(sl_runner *r, sl_api_source *s)
{
    if (!s->relay && !s->relay_path && !s->relay_err)
        return;
    if (s->relay)
        sl_log(SL_LOG_INFO, "cluster", "worker %s stops the relay of source %s", r->a->opts.name,
               s->name);
    sl__relay_clear(s);
    char k[1024];
    snprintf(k, sizeof k, "%s/relay/%s", r->root, s->name);
    sl_etcd_delete(r->e, k, NULL, NULL);
}

static void source_free(sl_runner *r, sl_api_source *s)
{
    relay_stop(r, s);
    json_decref(s->def);
    free(s->name);
    free(s);
}

static void sources_free(sl_runner *r)
{
    for (size_t i = 0; i < r->nsrcs; i++)
        source_free(r, r->srcs[i]);
    free(r->srcs);
    r->srcs = NULL;
    r->nsrcs = 0;
}

static int collect(void *ud, const char *name, const char *value)
{
    json_object_set_new(ud, name, json_string(value));
    return 0;
}

/* Read the sources again. A source whose stored text did not change keeps its parsed definition
 * and its running relay; one that changed is parsed again (its relay stops, and relays()
 * starts it again with the new definition); one deleted is dropped with its relay. Restarting
 * every relay on any change (a new disabled source, say) would cut each relay's partial
 * transaction and hide its status meanwhile. 0 or an etcd error. */
static int load_sources(sl_runner *r, sl_error *err)
{
    json_t *raw = json_object();
    if (!raw)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    int rc = sl_meta_scan(r->store, "source", "", collect, raw, err);
    if (rc != 0 || json_equal(raw, r->src_raw)) {
        json_decref(raw);
        return rc;
    }
    size_t n = json_object_size(raw);
    sl_api_source **v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        json_decref(raw);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    size_t nv = 0;
    /* keep what is unchanged; the rest of the old list goes */
    for (size_t i = 0; i < r->nsrcs; i++) {
        sl_api_source *s = r->srcs[i];
        json_t *now = json_object_get(raw, s->name);
        if (now && json_equal(now, json_object_get(r->src_raw, s->name)))
            v[nv++] = s;
        else
            source_free(r, s);
    }
    const char *name;
    json_t *x;
    json_object_foreach(raw, name, x) {
        int kept = 0;
        for (size_t i = 0; i < nv && !kept; i++)
            kept = !strcmp(v[i]->name, name);
        if (kept)
            continue;
        sl_error e = { 0 };
        json_t *def = json_loads(json_string_value(x), 0, NULL);
        sl_api_source *s = calloc(1, sizeof *s);
        if (!def || !s || sl__open_secrets(r->a, def, &e) != 0 || !(s->name = strdup(name))) {
            sl_log(SL_LOG_ERROR, "cluster", "source %s in etcd cannot be read: %s", name,
                   e.code ? e.msg : "malformed JSON or out of memory");
            json_decref(def);
            free(s);
            continue;   /* read again when its text (or another source's) changes */
        }
        s->def = def;
        s->api = r->a;
        v[nv++] = s;
    }
    free(r->srcs);
    r->srcs = v;
    r->nsrcs = nv;
    json_decref(r->src_raw);
    r->src_raw = raw;
    return 0;
}

/* The stored texts of the task's sources, joined: a change of one recompiles the task. Caller
 * frees. */
static char *sources_text(sl_runner *r, json_t *def)
{
    json_t *sc = json_object_get(json_object_get(def, "source_config"), "source_conf");
    size_t i;
    json_t *x;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    json_array_foreach(sc, i, x) {
        const char *sn = json_string_value(json_object_get(x, "source_name"));
        const char *t = sn ? json_string_value(json_object_get(r->src_raw, sn)) : NULL;
        const char *rp = NULL;
        for (size_t j = 0; sn && j < r->nsrcs; j++)
            if (!strcmp(r->srcs[j]->name, sn))
                rp = r->srcs[j]->relay_path;
        /* the relay's directory is part of what the readers are compiled with */
        fprintf(f, "%s\n%s\n", t ? t : "", rp ? rp : "");
    }
    fclose(f);
    return out;
}

static run_entry *find(sl_runner *r, const char *task, const char *source)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i]->task, task) && !strcmp(r->v[i]->source, source))
            return r->v[i];
    return NULL;
}

/* Compile the task (all of its sources: the compiler checks them) and run the subtask of source
 * under epoch. Logged on failure (the next poll tries again only when something changed). */
static void add_entry(sl_runner *r, const char *task, const char *text, json_t *def,
                      const char *source, const char *src_text, long long epoch)
{
    sl_error err = { 0 };
    json_t *probs = NULL, *copy = json_deep_copy(def);
    sl_task_plan *plan = NULL;
    run_entry *e = calloc(1, sizeof *e);
    /* under the API's lock, as its own compiles: the compiler may load a task's custom plugin
     * into the shared registry */
    pthread_rwlock_wrlock(&r->a->lock);
    int rc = copy && e ? sl__task_compile_with(r->a, r->srcs, r->nsrcs, copy, "", &plan, &probs,
                                               NULL, &err) : SL_ENOMEM;
    pthread_rwlock_unlock(&r->a->lock);
    json_decref(copy);
    if (rc != 0) {
        char *p = probs ? sl__dump_compact(probs) : NULL;
        sl_log(SL_LOG_ERROR, "cluster", "worker %s cannot run task %s (source %s): %s %s",
               r->a->opts.name, task, source, err.msg, p ? p : "");
        free(p);
        json_decref(probs);
        /* remembered without a subtask, so the same text is not compiled again each poll */
    }
    size_t idx = 0;
    while (plan && idx < plan->nsubtasks && strcmp(plan->subtasks[idx].source_name, source))
        idx++;
    pthread_rwlock_wrlock(&r->vlock);
    if (e && r->n == r->cap) {
        run_entry **nv = realloc(r->v, (r->cap ? r->cap * 2 : 8) * sizeof *nv);
        if (nv) {
            r->v = nv;
            r->cap = r->cap ? r->cap * 2 : 8;
        }
    }
    int room = r->n < r->cap;
    pthread_rwlock_unlock(&r->vlock);
    if (!e || !room) {
        sl_log(SL_LOG_ERROR, "cluster", "task %s source %s: out of memory", task, source);
        sl_task_plan_free(plan);
        free(e);
        return;
    }
    e->task = strdup(task);
    e->source = strdup(source);
    e->text = strdup(text);
    e->src_text = strdup(src_text ? src_text : "");
    if (!e->task || !e->source || !e->text || !e->src_text) {
        sl_log(SL_LOG_ERROR, "cluster", "task %s source %s: out of memory", task, source);
        sl_task_plan_free(plan);
        e->plan = NULL;
        entry_free(r, e, 0);
        return;
    }
    e->epoch = epoch;
    e->plan = plan;
    e->seen = 1;
    if (plan && idx < plan->nsubtasks) {
        /* a subtask stored as Running starts on the worker's event thread, fenced, unless the
         * operator asked otherwise meanwhile (a stop while no worker ran it): that wish is
         * acted on first */
        char key[1024], *want = NULL;
        snprintf(key, sizeof key, "%s/%s", task, source);
        if (sl_meta_get(r->store, "want", key, &want, NULL) != 0)
            want = NULL;
        e->sub = sl_subtask_new_fenced(r->w, plan, idx, epoch, want);
        free(want);
        sl_log(SL_LOG_INFO, "cluster", "worker %s runs task %s source %s (fence epoch %lld)",
               r->a->opts.name, task, source, epoch);
    }
    pthread_rwlock_wrlock(&r->vlock);
    r->v[r->n++] = e;
    pthread_rwlock_unlock(&r->vlock);
}

/* The epoch a binding of this member holds for source, or 0 when it is not ours or a transfer
 * asks us to release it at that epoch (binding.h: ROOT/release/<source>). */
static long long my_epoch(sl_runner *r, json_t *bind, json_t *rel, const char *source)
{
    json_t *b = json_object_get(bind, source);
    const char *w = json_string_value(json_object_get(b, "worker"));
    long long epoch = json_integer_value(json_object_get(b, "epoch"));
    if (!w || strcmp(w, r->a->opts.name) || !epoch)
        return 0;
    if (json_integer_value(json_object_get(json_object_get(rel, source), "epoch")) == epoch)
        return 0;
    return epoch;
}

/* The release requests that name this member: {source: {"epoch", "acked", "rev"}}. */
static json_t *read_releases(sl_runner *r)
{
    char p[512];
    snprintf(p, sizeof p, "%s/release/", r->root);
    sl_etcd_kv *kvs = NULL;
    size_t n = 0;
    json_t *out = json_object();
    if (sl_etcd_get_prefix(r->e, p, 0, &kvs, &n, NULL) != 0)
        return out;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_loadb(kvs[i].value, kvs[i].value_len, 0, NULL);
        const char *w = json_string_value(json_object_get(v, "worker"));
        if (w && !strcmp(w, r->a->opts.name)) {
            json_object_set_new(v, "rev", json_integer(kvs[i].mod_revision));
            json_object_set(out, kvs[i].key + strlen(p), v);
        }
        json_decref(v);
    }
    sl_etcd_kvs_free(kvs, n);
    return out;
}

/* Tell the leader the sources it asked for are stopped here (their subtasks were dropped before
 * this is called): "acked" set, only on the request as it was read. */
static void ack_releases(sl_runner *r, json_t *rel)
{
    const char *src;
    json_t *v;
    json_object_foreach(rel, src, v) {
        if (json_is_true(json_object_get(v, "acked")))
            continue;
        char k[512];
        snprintf(k, sizeof k, "%s/release/%s", r->root, src);
        json_int_t rev = json_integer_value(json_object_get(v, "rev"));
        json_t *o = json_deep_copy(v);
        json_object_del(o, "rev");
        json_object_set_new(o, "acked", json_true());
        char *text = o ? sl__dump_compact(o) : NULL;
        json_decref(o);
        if (text && sl_etcd_put_if(r->e, k, text, strlen(text), rev, 0, NULL, NULL) == 0)
            sl_log(SL_LOG_INFO, "cluster", "worker %s stopped source %s for its transfer",
                   r->a->opts.name, src);
        free(text);
    }
}

/* The relay's purge (on its thread): the oldest checkpoint file of the source's subtasks here;
 * -1 while the list changes or a position is not known. */
static int relay_needed(void *ud, char *file, size_t cap)
{
    sl_api_source *s = ud;
    sl_runner *r = s->api->runner;
    if (!r || pthread_rwlock_tryrdlock(&r->vlock) != 0)
        return -1;
    int rc = 0;
    file[0] = 0;
    for (size_t i = 0; rc >= 0 && i < r->n; i++)
        if (r->v[i]->sub)
            sl__relay_needed_fold(r->v[i]->sub, s->name, file, cap, &rc);
    pthread_rwlock_unlock(&r->vlock);
    return rc;
}

/* Run the relay of each bound source that enables it (on the bound worker, as DM runs it), and
 * only of those; publish their status under the lease. A new relay starts at the oldest
 * position the source's tasks resume from (their checkpoints in their targets, or the position
 * their source_conf names). */
static void relays(sl_runner *r, json_t *bind, json_t *rel, json_t *tasks, long long lease)
{
    for (size_t i = 0; i < r->nsrcs; i++) {
        sl_api_source *s = r->srcs[i];
        json_t *rc = json_object_get(s->def, "relay_config");
        long long epoch = my_epoch(r, bind, rel, s->name);
        int want = json_is_true(json_object_get(rc, "enable_relay")) && epoch != 0;
        /* a binding that moved away and back since the relay started: start it again, as
         * after any move (the position it holds may be older than the tasks') */
        if (!want || s->relay_epoch != epoch)
            relay_stop(r, s);
        if (!want)
            continue;
        if (!s->relay && !s->relay_err) {
            s->relay_epoch = epoch;
            char oldest[256] = "";
            sl__ckpt_gone gone = { .n = 0 };
            const char *tname;
            json_t *tv;
            json_object_foreach(tasks, tname, tv) {
                sl_error err = { 0 };
                json_t *def = json_loads(json_string_value(tv), 0, NULL), *x;
                json_t *sc = json_object_get(json_object_get(def, "source_config"), "source_conf");
                size_t k;
                json_array_foreach(sc, k, x) {
                    const char *sn = json_string_value(json_object_get(x, "source_name"));
                    if (!sn || strcmp(sn, s->name) || sl__open_secrets(r->a, def, &err) != 0)
                        continue;
                    char f[256];
                    sl__task_ckpt_file(tname, def, s->name, f, sizeof f, &gone);
                    if (!f[0] && json_is_string(json_object_get(x, "binlog_name")))
                        snprintf(f, sizeof f, "%s",
                                 json_string_value(json_object_get(x, "binlog_name")));
                    if (f[0] && (!oldest[0] || strcmp(f, oldest) < 0))
                        snprintf(oldest, sizeof oldest, "%s", f);
                }
                json_decref(def);
            }
            sl__relay_start(r->a, s, oldest, relay_needed, s);
            sl_log(SL_LOG_INFO, "cluster", "worker %s runs the relay of source %s%s%s",
                   r->a->opts.name, s->name, s->relay_err ? ": " : "",
                   s->relay_err ? s->relay_err : "");
        }
        const char *dir = json_string_value(json_object_get(rc, "relay_dir"));
        json_t *st = s->relay ? sl_relay_unit_status(s->relay, dir ? dir : "")
                              : json_pack("{s:s,s:s,s:s}", "relay_dir", dir ? dir : "", "stage",
                                          "Paused", "error_msg",
                                          s->relay_err ? s->relay_err : "not started");
        char *text = st ? sl__dump_compact(st) : NULL, k[1024];
        json_decref(st);
        snprintf(k, sizeof k, "%s/relay/%s", r->root, s->name);
        if (text)
            sl_etcd_put(r->e, k, text, strlen(text), lease, NULL, NULL);
        free(text);
    }
}

static void poll_once(sl_runner *r)
{
    sl_api *a = r->a;
    sl_error err = { 0 };
    if (!sl_member_lease_holds(a->member)) {
        /* the lease is gone, or etcd has not renewed it for a TTL (no quorum, a partition): the
         * bindings it held move; the fence stops what we would commit meanwhile */
        if (r->n)
            drop_all(r, "this worker's lease is gone or not renewed for a TTL");
        for (size_t i = 0; i < r->nsrcs; i++)
            relay_stop(r, r->srcs[i]);
        return;
    }
    json_t *bind = NULL;
    if (sl_binding_read(r->e, r->root, &bind, &err) != 0) {
        /* etcd does not answer: keep running while the lease lasts (the member thread says
         * when it is gone) */
        sl_log(SL_LOG_DEBUG, "cluster", "worker %s: %s", a->opts.name, err.msg);
        return;
    }
    json_t *rel = read_releases(r);
    for (size_t i = r->n; i-- > 0;) {
        run_entry *e = r->v[i];
        if (my_epoch(r, bind, rel, e->source) != e->epoch)
            drop_at(r, i, json_object_get(rel, e->source) ? "the source is being transferred"
                                                          : "the source's binding moved");
    }
    ack_releases(r, rel);

    json_t *tasks = json_object();
    if (load_sources(r, &err) != 0 || !tasks ||
        sl_meta_scan(r->store, "task", "", collect, tasks, &err) != 0) {
        sl_log(SL_LOG_DEBUG, "cluster", "worker %s: %s", a->opts.name, err.msg);
        json_decref(tasks);
        json_decref(bind);
        json_decref(rel);
        return;
    }
    relays(r, bind, rel, tasks, sl_member_lease(a->member));
    for (size_t i = 0; i < r->n; i++)
        r->v[i]->seen = 0;
    const char *tname;
    json_t *tv;
    json_object_foreach(tasks, tname, tv) {
        const char *text = json_string_value(tv);
        json_t *def = json_loads(text, 0, NULL), *sc;
        if (!def || sl__open_secrets(a, def, &err) != 0) {
            json_decref(def);
            continue;
        }
        sc = json_object_get(json_object_get(def, "source_config"), "source_conf");
        char *stext = NULL;
        size_t k;
        json_t *x;
        json_array_foreach(sc, k, x) {
            const char *src = json_string_value(json_object_get(x, "source_name"));
            long long epoch = src ? my_epoch(r, bind, rel, src) : 0;
            if (!epoch)
                continue;
            if (!stext)
                stext = sources_text(r, def);
            run_entry *e = find(r, tname, src);
            if (e && e->epoch == epoch && !strcmp(e->text, text) &&
                !strcmp(e->src_text, stext ? stext : "")) {
                e->seen = 1;
                continue;
            }
            if (e) {
                for (size_t i = 0; i < r->n; i++)
                    if (r->v[i] == e)
                        drop_at(r, i, "the task or its source changed");
            }
            add_entry(r, tname, text, def, src, stext, epoch);
        }
        free(stext);
        json_decref(def);
    }
    json_decref(tasks);
    json_decref(bind);
    json_decref(rel);
    for (size_t i = r->n; i-- > 0;)
        if (!r->v[i]->seen)
            drop_at(r, i, "the task was deleted");

    /* the operator's wishes, then the status the leader shows */
    long long lease = sl_member_lease(a->member);
    for (size_t i = 0; i < r->n; i++) {
        run_entry *e = r->v[i];
        if (!e->sub)
            continue;
        char key[1024], *want = NULL;
        snprintf(key, sizeof key, "%s/%s", e->task, e->source);
        if (sl_meta_get(r->store, "want", key, &want, NULL) == 0) {
            sl_error ferr = { 0 };
            if (sl_subtask_follow(e->sub, want, &ferr) != 0)
                sl_log(SL_LOG_WARN, "cluster", "task %s source %s: %s", e->task, e->source,
                       ferr.msg);
            free(want);
        }
        json_t *st = sl_subtask_status(e->sub);
        char *text = st ? sl__dump_compact(st) : NULL;
        json_decref(st);
        snprintf(key, sizeof key, "%s/live/%s/%s", r->root, e->task, e->source);
        if (text && sl_etcd_put(r->e, key, text, strlen(text), lease, NULL, &err) != 0)
            sl_log(SL_LOG_DEBUG, "cluster", "publishing the status of %s: %s", key, err.msg);
        free(text);
    }
}

static void runner_main(void *arg)
{
    sl_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        poll_once(r);
        pthread_mutex_lock(&r->mu);
        if (r->stop)
            break;
        if (r->kick) {
            r->kick = 0;
            continue;
        }
        struct timespec until = sl_timespec_in(CLOCK_REALTIME, RUN_POLL_MS);
        pthread_cond_timedwait(&r->cv, &r->mu, &until);
    }
    pthread_mutex_unlock(&r->mu);
}

/* sl_worker_opts.stage_put: the stage record only while the source is still bound here at
 * the subtask's epoch (one etcd transaction). */
static int stage_put(void *ud, const char *source, long long fence, const char *key,
                     const char *value, sl_error *err)
{
    sl_runner *r = ud;
    char kb[1024], ks[1024];
    snprintf(kb, sizeof kb, "%s/bound/%s", r->root, source);
    snprintf(ks, sizeof ks, "%s/meta/stage/%s", r->root, key);
    sl_etcd_cmp cmp = { .kind = SL_ETCD_MOD_IS, .key = kb, .rev = fence };
    sl_etcd_op op = { .kind = SL_ETCD_PUT, .key = ks, .value = value, .len = strlen(value) };
    pthread_mutex_lock(&r->ew_mu);
    int rc = sl_etcd_txn(r->ew, &cmp, 1, &op, 1, NULL, err);
    pthread_mutex_unlock(&r->ew_mu);
    /* the leader shows the stage record at once, and this worker's live status (with its name)
     * only from the runner's next publish: wake it rather than leave a half-second window in
     * which a status names no worker */
    pthread_mutex_lock(&r->mu);
    r->kick = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static void runner_free(sl_runner *r)
{
    if (!r)
        return;
    sl_worker_stop_events(r->w);
    drop_all(r, "the server stops");
    sl_worker_free(r->w);
    sources_free(r);
    json_decref(r->src_raw);
    free(r->v);
    sl_meta_close(r->store);
    sl_etcd_free(r->e);
    sl_etcd_free(r->ew);
    pthread_mutex_destroy(&r->ew_mu);
    pthread_rwlock_destroy(&r->vlock);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->root);
    free(r);
}

int sl__runner_start(sl_api *a, sl_error *err)
{
    sl_runner *r = calloc(1, sizeof *r);
    if (!r)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->ew_mu, NULL);
    pthread_rwlock_init(&r->vlock, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->a = a;
    r->root = strdup(a->opts.etcd_root ? a->opts.etcd_root : "/sluice");
    int rc;
    sl_worker_opts wo = { .name = a->opts.name, .sched = a->sched, .registry = a->registry,
                          .stage_put = stage_put, .live_ud = r };
    if (!r->root) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = sl_etcd_new(a->opts.etcd, 3000, &r->e, err)) != 0 ||
        (rc = sl_etcd_new(a->opts.etcd, 3000, &r->ew, err)) != 0 ||
        (rc = sl_meta_etcd_open(a->opts.etcd, a->opts.etcd_root, &r->store, err)) != 0)
        goto fail;
    wo.store = r->store;
    if ((rc = sl_worker_new(&wo, &r->w, err)) != 0)
        goto fail;
    /* set before the thread runs: the relays' purge (relay_needed) finds the runner here */
    a->runner = r;
    if ((rc = sl_thread_spawn(a->sched, "sl-runner", runner_main, r, &r->thr)) != 0) {
        a->runner = NULL;
        sl_error_set(err, rc, "cannot start the cluster worker's thread");
        goto fail;
    }
    return 0;
fail:
    runner_free(r);
    return rc;
}

void sl__runner_stop(sl_api *a)
{
    sl_runner *r = a->runner;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    sl_thread_join(r->thr);
    runner_free(r);         /* joins the relays, the last readers of a->runner */
    a->runner = NULL;
}
