/*
 * sources.c - /api/v1/sources: create (after connecting to the source and detecting its flavor),
 * list, get, update, delete, enable/disable (which start/stop the subtasks on the source),
 * status, the source's schemas and tables read from the source server itself, and the relay log
 * (relay_config, relay/enable|disable|purge, relay_status). Transfer answers 501 until there are
 * several workers.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay.h"
#include "ckpt.h"
#include "sluice/log.h"

sl_api_source *sl__source_find(sl_api *a, const char *name)
{
    for (size_t i = 0; i < a->nsources; i++)
        if (!strcmp(a->sources[i]->name, name))
            return a->sources[i];
    return NULL;
}

static void source_free(sl_api_source *s)
{
    if (!s)
        return;
    sl_relay_unit_free(s->relay);
    free(s->relay_path);
    free(s->relay_err);
    free(s->name);
    json_decref(s->def);
    free(s);
}

static int source_add(sl_api *a, sl_api_source *s)
{
    if (a->nsources == a->capsources) {
        size_t cap = a->capsources ? a->capsources * 2 : 16;
        sl_api_source **n = realloc(a->sources, cap * sizeof *n);
        if (!n)
            return SL_ENOMEM;
        a->sources = n;
        a->capsources = cap;
    }
    /* in name order, as the store scans them back after a restart */
    size_t at = a->nsources;
    while (at > 0 && strcmp(a->sources[at - 1]->name, s->name) > 0)
        at--;
    memmove(a->sources + at + 1, a->sources + at, (a->nsources - at) * sizeof *a->sources);
    a->sources[at] = s;
    a->nsources++;
    return 0;
}

static void source_remove(sl_api *a, sl_api_source *s)
{
    for (size_t i = 0; i < a->nsources; i++)
        if (a->sources[i] == s) {
            memmove(a->sources + i, a->sources + i + 1, (a->nsources - i - 1) * sizeof *a->sources);
            a->nsources--;
            break;
        }
    source_free(s);
}

void sl__sources_free_all(sl_api *a)
{
    for (size_t i = 0; i < a->nsources; i++)
        source_free(a->sources[i]);
    free(a->sources);
    a->sources = NULL;
    a->nsources = a->capsources = 0;
}

/* ---- the relay log ---------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* What relay_config.relay_dir may look like on any server: a path without a '..' component
 * (relative to the data dir, or absolute). 0, or -1 with why in msg. */
static int relay_dir_form(const char *dir, char *msg, size_t msz)
{
    if (!dir)
        return 0;
    for (const char *p = dir; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == dir || p[-1] == '/') && (p[2] == '\0' || p[2] == '/')) {
            snprintf(msg, msz, "'%.300s' must not contain '..'", dir);
            return -1;
        }
    return 0;
}

/*
 * The relay directory of source `name` for relay_config.relay_dir `dir` ("" = ./relay_log):
 * <data dir>/<dir>/<name>, or <dir>/<name> for an absolute dir, which must lie inside the data
 * dir (a relay is server state, like the metadata, and the server owns what is under it).
 * Created. 0 with out, or -1 with why in msg. Only the server that runs the relay calls it: in
 * a cluster that is the source's bound worker, whose data dir is not the leader's, so the
 * leader checks the form alone (relay_dir_check).
 */
static int relay_dir_resolve(sl_api *a, const char *dir, const char *name, char *out, size_t cap,
                             char *msg, size_t msz)
{
    char base[PATH_MAX];
    int n;
    if (!dir || !dir[0])
        dir = "./relay_log";
    if (relay_dir_form(dir, msg, msz) != 0)
        return -1;
    if (!realpath(a->data_dir, base)) {
        snprintf(msg, msz, "the data dir %.300s: %s", a->data_dir, strerror(errno));
        return -1;
    }
    if (dir[0] == '/') {
        size_t bl = strlen(base);
        if (strncmp(dir, base, bl) != 0 || (dir[bl] != '/' && dir[bl] != '\0')) {
            snprintf(msg, msz, "'%.300s' is outside the server's data dir %.300s", dir, base);
            return -1;
        }
        n = snprintf(out, cap, "%s/%s", dir, name);
    } else {
        while (dir[0] == '.' && dir[1] == '/')
            dir += 2;
        n = snprintf(out, cap, "%s/%s/%s", base, dir, name);
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(msg, msz, "'%.300s' makes too long a path", dir);
        return -1;
    }
    if (mkdir_p(out) != 0 || access(out, W_OK) != 0) {
        snprintf(msg, msz, "%.300s is not writable: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

/* The check of a relay_dir given on the API (create, update, relay/enable): a single server
 * resolves it (and creates the directory) as its relay will; a cluster's leader, which runs no
 * relay, checks only its form and creates nothing: the bound worker resolves it in its own data
 * dir, and says in the relay's status when it cannot. 0, or -1 with why in msg. */
static int relay_dir_check(sl_api *a, const char *dir, const char *name, char *msg, size_t msz)
{
    char path[PATH_MAX];
    if (a->member)
        return relay_dir_form(dir, msg, msz);
    return relay_dir_resolve(a, dir, name, path, sizeof path, msg, msz);
}

/* A replica server id for the relay of a source, apart from the task readers' (1e6..2e9). */
static uint32_t relay_server_id(const char *name)
{
    uint32_t h = 2166136261u;
    for (const char *p = "relay/"; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return 3000000000u + h % 1000000000u;
}

/*
 * The relay's purge asks (on its own thread) for the oldest binlog file the source's tasks still
 * need: the checkpoint file of each started, unfinished task (its sync_status.syncer_binlog).
 * -1 (purge nothing now) when the API is busy with a change (the relay must never wait for a
 * lock whose holder may be stopping the relay) or when a task's position is not known: a task
 * in its full phase, or one whose checkpoint its status does not show.
 */
static int relay_needed_locked(sl_api *a, sl_api_source *s, char *file, size_t cap,
                               char *unknown, size_t ucap);

static int relay_needed(void *ud, char *file, size_t cap)
{
    sl_api_source *s = ud;
    sl_api *a = s->api;
    if (pthread_rwlock_tryrdlock(&a->lock) != 0)
        return -1;
    int rc = relay_needed_locked(a, s, file, cap, NULL, 0);
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

int sl__relay_needed_fold(sl_subtask *st, const char *source, char *file, size_t cap, int *rc)
{
    if (strcmp(sl_subtask_source(st), source) || !sl_subtask_ever_started(st) ||
        sl_subtask_stage(st) == SL_STAGE_FINISHED)
        return 0;
    json_t *js = sl_subtask_status(st);
    const char *unit = json_string_value(json_object_get(js, "unit"));
    const char *sb = json_string_value(json_object_get(json_object_get(js, "sync_status"),
                                                       "syncer_binlog"));
    char f[256] = "";
    if (unit && !strcmp(unit, "Sync") && sb && sb[0] == '(' && sscanf(sb, "(%255[^,]", f) != 1)
        f[0] = '\0';
    json_decref(js);
    if (!f[0]) {
        *rc = -1;
        return -1;
    }
    if (*rc == 0 || strcmp(f, file) < 0) {
        snprintf(file, cap, "%s", f);
        *rc = 1;
    }
    return 0;
}

/* relay_needed with the lock held; unknown (if not NULL) gets the task whose position is not
 * known when the answer is -1. */
static int relay_needed_locked(sl_api *a, sl_api_source *s, char *file, size_t cap,
                               char *unknown, size_t ucap)
{
    int rc = 0;
    file[0] = '\0';
    for (size_t i = 0; rc >= 0 && i < a->ntasks; i++)
        for (size_t j = 0; rc >= 0 && j < a->tasks[i]->nsubs; j++)
            if (sl__relay_needed_fold(a->tasks[i]->subs[j], s->name, file, cap, &rc) < 0 &&
                unknown)
                snprintf(unknown, ucap, "%s", a->tasks[i]->name);
    return rc;
}

/* The binlog file of the checkpoint of (task, source) in the task's target (the sink's
 * `<meta_schema>`.`<task>_syncer_checkpoint`, read as the reader reads it: plugins/common's
 * ckpt.h) into f, or "" when there is none or the target cannot tell within seconds. A target
 * listed in gone (it did not answer for another task of this loop) is not asked again: a relay
 * (re)start runs under the API's write lock, and a host that went away would otherwise cost 5 to
 * 15 s for each of its tasks. */
void sl__task_ckpt_file(const char *name, const json_t *task, const char *source, char *f,
                        size_t cap, sl__ckpt_gone *gone)
{
    const json_t *tc = json_object_get(task, "target_config"), *sec = json_object_get(tc, "security");
    char hp[272];
    snprintf(hp, sizeof hp, "%s:%" JSON_INTEGER_FORMAT, jstr(tc, "host"),
             json_integer_value(json_object_get(tc, "port")));
    f[0] = '\0';
    for (size_t i = 0; gone && i < gone->n; i++)
        if (!strcmp(gone->hp[i], hp)) {
            sl_log(SL_LOG_WARN, "api", "source %s: the checkpoint of task %s is not known (its "
                   "target %s did not answer for another task): the relay does not wait for it",
                   source, name, hp);
            return;
        }
    char *cn = sl_cert_allowed_cn_join(sec);
    sl_myconn_opts o = {
        .host = jstr(tc, "host"),
        .port = (int)json_integer_value(json_object_get(tc, "port")),
        .user = jstr(tc, "user"),
        .password = jstr(tc, "password"),
        .ssl_ca = jstr(sec, "ssl_ca_content"),
        .ssl_cert = jstr(sec, "ssl_cert_content"),
        .ssl_key = jstr(sec, "ssl_key_content"),
        .cert_allowed_cn = cn,
        .connect_timeout = 5,
        .rw_timeout = 10,
    };
    sl_error err = { 0 };
    sl_ckpt_pos ck = { 0 };
    const char *ms = jstr(task, "meta_schema");
    MYSQL *db = sl_myconn_open(&o, &err);
    if (db && sl_ckpt_read(db, ms[0] ? ms : "dm_meta", name, source, &ck, &err) == 0)
        snprintf(f, cap, "%s", ck.binlog_name);
    else if (!db || err.code != SL_ENOENT)
        sl_log(SL_LOG_WARN, "api", "source %s: the checkpoint of task %s is not known (%s): the "
               "relay does not wait for it", source, name, err.msg);
    if (f[0] == '\0' && err.code == SL_ECONN && gone && gone->n < SL_CKPT_GONE_MAX)
        snprintf(gone->hp[gone->n++], sizeof gone->hp[0], "%s", hp);
    sl_ckpt_pos_clear(&ck);
    if (db)
        mysql_close(db);
    free(cn);
}

/*
 * Where a relay without relay_binlog_name or relay_binlog_gtid starts: the oldest file the
 * source's unfinished tasks resume from - each one's checkpoint in its target or, for a task
 * without one, the binlog_name its source_conf names. A new relay (dir holds no relay.index yet)
 * starts there; one that resumes needs it only when the source purged past its files (relay.c
 * sets them aside and starts again here, or at the source's oldest file), but which it is shows
 * only once the relay asks the source, so it is read for every start, as a cluster's worker
 * does. "" when none is known: a new relay starts at the source's current file, and a task that
 * resumes before it fails at its start naming the relay (binlog-reader's local.c). Lock held,
 * no task of the source runs (a relay changes only then); connects to the tasks' targets.
 */
static void relay_start_file(sl_api *a, sl_api_source *s, const char *dir, char *file, size_t cap)
{
    char ix[PATH_MAX];
    file[0] = '\0';
    int n = snprintf(ix, sizeof ix, "%s/relay.index", dir);
    int resumes = n > 0 && (size_t)n < sizeof ix && access(ix, F_OK) == 0;
    sl__ckpt_gone gone = { .n = 0 };
    for (size_t i = 0; i < a->ntasks; i++)
        for (size_t j = 0; j < a->tasks[i]->nsubs; j++) {
            sl_subtask *st = a->tasks[i]->subs[j];
            if (strcmp(sl_subtask_source(st), s->name) || sl_subtask_stage(st) == SL_STAGE_FINISHED)
                continue;
            char f[256];
            sl__task_ckpt_file(a->tasks[i]->name, a->tasks[i]->def, s->name, f, sizeof f, &gone);
            size_t k;
            json_t *sc;
            if (!f[0])
                json_array_foreach(json_object_get(json_object_get(a->tasks[i]->def,
                                                                   "source_config"),
                                                   "source_conf"), k, sc)
                    if (!strcmp(jstr(sc, "source_name"), s->name))
                        snprintf(f, sizeof f, "%s", jstr(sc, "binlog_name"));
            if (f[0] && (!file[0] || strcmp(f, file) < 0))
                snprintf(file, cap, "%s", f);
        }
    if (file[0] && !resumes)
        sl_log(SL_LOG_INFO, "api", "source %s: the new relay starts at %s, the oldest position "
               "of the source's tasks", s->name, file);
}

void sl__relay_clear(sl_api_source *s)
{
    sl_relay_unit_free(s->relay);
    s->relay = NULL;
    free(s->relay_err);
    s->relay_err = NULL;
    free(s->relay_path);
    s->relay_path = NULL;
}

/* Start, restart or stop the source's relay as its definition says (relay_config.enable_relay).
 * A relay that cannot start keeps why in relay_err (shown in relay_status); the source is
 * unaffected. Call with the write lock held, or before serving. In a cluster the relay runs on
 * the source's bound worker (api/runner.c calls sl__relay_start), not here. */
static void relay_apply(sl_api *a, sl_api_source *s)
{
    if (a->member) {
        sl__relay_clear(s);
        return;
    }
    char oldest[256] = "", path[PATH_MAX], msg[SL_ERRMSG_MAX];
    json_t *rc = json_object_get(s->def, "relay_config");
    if (json_is_true(json_object_get(rc, "enable_relay")) && !a->offline &&
        !jstr(rc, "relay_binlog_name")[0] && !jstr(rc, "relay_binlog_gtid")[0] &&
        relay_dir_resolve(a, jstr(rc, "relay_dir"), s->name, path, sizeof path, msg,
                          sizeof msg) == 0)
        relay_start_file(a, s, path, oldest, sizeof oldest);
    sl__relay_start(a, s, oldest, relay_needed, s);
}

void sl__relay_start(sl_api *a, sl_api_source *s, const char *oldest,
                     int (*needed)(void *ud, char *file, size_t cap), void *needed_ud)
{
    sl__relay_clear(s);
    json_t *rc = json_object_get(s->def, "relay_config");
    if (!json_is_true(json_object_get(rc, "enable_relay")))
        return;
    char path[PATH_MAX], msg[SL_ERRMSG_MAX];
    if (relay_dir_resolve(a, jstr(rc, "relay_dir"), s->name, path, sizeof path, msg,
                          sizeof msg) != 0) {
        s->relay_err = strdup(msg);
        return;
    }
    s->relay_path = strdup(path);
    const char *file = jstr(rc, "relay_binlog_name"), *gtid = jstr(rc, "relay_binlog_gtid");
    if (a->offline) {
        s->relay_err = strdup("this server is offline (no database connections)");
        return;
    }
    if (!file[0] && !gtid[0])
        file = oldest ? oldest : "";
    const json_t *d = s->def, *sec = json_object_get(d, "security"), *pg = json_object_get(d, "purge");
    char *cn = sl_cert_allowed_cn_join(sec);
    s->api = a;
    sl_relay_opts o = {
        .dir = path,
        .start_file = file,
        .start_gtid = gtid,
        .server_id = relay_server_id(s->name),
        .source = {
            .host = jstr(d, "host"),
            .port = (int)json_integer_value(json_object_get(d, "port")),
            .user = jstr(d, "user"),
            .password = jstr(d, "password"),
            .ssl_ca = jstr(sec, "ssl_ca_content"),
            .ssl_cert = jstr(sec, "ssl_cert_content"),
            .ssl_key = jstr(sec, "ssl_key_content"),
            .cert_allowed_cn = cn,
        },
        .purge_interval_s = json_integer_value(json_object_get(pg, "interval")),
        .purge_expires_h = json_integer_value(json_object_get(pg, "expires")),
        .purge_remain_gb = json_integer_value(json_object_get(pg, "remain_space")),
        .purge_needed = needed,
        .purge_ud = needed_ud,
    };
    sl_error err = { 0 };
    if (sl_relay_unit_start(a->sched, &o, &s->relay, &err) != 0) {
        /* no relay (its directory is locked by another writer, or not a relay's): the source's
         * tasks read the source, as they do while a running relay is in error (relay.error) */
        s->relay_err = strdup(err.msg);
        free(s->relay_path);
        s->relay_path = NULL;
    } else
        sl_log(SL_LOG_INFO, "api", "source %s: relay log in %s", s->name, path);
    free(cn);
}

/* relay_apply after a change of the source, and the source's tasks compiled again when the
 * relay directory their readers are given (api/compile.c: relay_path) changed. Write lock held;
 * none of the source's tasks runs. */
static void relay_reapply(sl_api *a, sl_api_source *s)
{
    char *before = s->relay_path ? strdup(s->relay_path) : NULL;
    int had = s->relay_path != NULL;
    relay_apply(a, s);
    if (had != (s->relay_path != NULL) || (had && (!before || strcmp(before, s->relay_path))))
        sl__tasks_recompile_source(a, s->name);
    free(before);
}

static json_t *relay_status(sl_api *a, sl_api_source *s)
{
    json_t *rc = json_object_get(s->def, "relay_config");
    if (!json_is_true(json_object_get(rc, "enable_relay")))
        return NULL;
    const char *dir = jstr(rc, "relay_dir");
    if (a->member) {
        /* it runs on the source's bound worker, which publishes its status (api/runner.c) */
        json_t *o = NULL;
        if (sl_member_relay_get(a->member, s->name, &o) == 0)
            return o;
        return json_pack("{s:s,s:s,s:s}", "relay_dir", dir, "stage", "Paused", "error_msg",
                         "no worker runs the relay of this source now (none is bound to it, or "
                         "it is starting)");
    }
    if (s->relay)
        return sl_relay_unit_status(s->relay, dir);
    return json_pack("{s:s,s:s,s:s}", "relay_dir", dir, "stage", "Paused", "error_msg",
                     s->relay_err ? s->relay_err : "not started");
}

static int restore_one(void *ud, const char *name, const char *value)
{
    sl_api *a = ud;
    if (sl__api_cancelled(a))
        return 1;   /* a stop request during startup: sl_api_new gives up */
    sl_error err = { 0 };
    json_t *def = json_loads(value, 0, NULL);
    sl_api_source *s = calloc(1, sizeof *s);
    if (!def || !s || sl__open_secrets(a, def, &err) != 0 || !(s->name = strdup(name)) ||
        source_add(a, s) != 0) {
        sl_log(SL_LOG_ERROR, "api", "source %s in the store cannot be restored: %s", name,
               err.code ? err.msg : "malformed or out of memory");
        json_decref(def);
        if (s)
            free(s->name);
        free(s);
        return 0;
    }
    s->def = def;
    relay_apply(a, s);
    return 0;
}

int sl__sources_restore(sl_api *a, sl_error *err)
{
    return sl_meta_scan(a->store, "source", "", restore_one, a, err);
}

/* ---- validation ------------------------------------------------------------------------------ */

#define BAD(...) do { sl__reply_error(r, 400, DM_ERR_OPENAPI, __VA_ARGS__); goto fail; } while (0)

static int opt_string(sl_req *r, const json_t *o, const char *k, const char *path, int nullable)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_string(v) || (nullable && json_is_null(v)))
        return 0;
    sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s/%s: must be a string", path, k);
    return -1;
}

static int opt_type(sl_req *r, const json_t *o, const char *k, const char *path, json_type t,
                    const char *what)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_typeof(v) == t || (t == JSON_TRUE && json_is_boolean(v)) ||
        (t == JSON_OBJECT && json_is_null(v)))
        return 0;
    sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s/%s: must be %s", path, k, what);
    return -1;
}

/* Build the normalized Source from a request object; old is the current definition on PUT. */
/* The fields of the DM OpenAPI's Source and its parts; any other is refused (sl__unknown_field),
 * as in a task: a misspelled "pasword" or "enabel_gtid" must not be dropped in silence. */
static const char *const SOURCE_FIELDS[] = {
    "source_name", "host", "port", "user", "password", "enable_gtid", "enable", "flavor",
    "security", "purge", "relay_config",
    "task_name_list", "status_list",   /* in what GET answers: a GET sent back is accepted */
};
static const char *const SECURITY_FIELDS[] = { "ssl_ca_content", "ssl_cert_content",
                                               "ssl_key_content", "cert_allowed_cn" };
static const char *const PURGE_FIELDS[] = { "interval", "expires", "remain_space" };
static const char *const RELAY_FIELDS[] = { "enable_relay", "relay_binlog_name",
                                            "relay_binlog_gtid", "relay_dir" };
static const char *const WRAPPER_FIELDS[] = { "source", "worker_name" };
#define KNOWN(a) a, sizeof a / sizeof a[0]

/* The source of a create or update body: DM's CreateSourceRequest wraps it in "source" (beside
 * worker_name), the seeds send it bare: take both. NULL after a 400 for an unknown field. */
static json_t *source_of(sl_req *r, json_t *body)
{
    json_t *in = json_object_get(body, "source");
    if (!json_is_object(in))
        return body;
    return sl__unknown_field(r, body, "", KNOWN(WRAPPER_FIELDS)) ? NULL : in;
}

static json_t *source_normalize(sl_req *r, const json_t *in, const json_t *old)
{
    const char *P = "/source";
    json_t *out = json_object(), *v;
    if (!json_is_object(in))
        BAD("%s: must be an object", P);
    if (sl__unknown_field(r, in, P, KNOWN(SOURCE_FIELDS)) ||
        sl__unknown_field(r, json_object_get(in, "security"), "/source/security",
                          KNOWN(SECURITY_FIELDS)) ||
        sl__unknown_field(r, json_object_get(in, "purge"), "/source/purge", KNOWN(PURGE_FIELDS)) ||
        sl__unknown_field(r, json_object_get(in, "relay_config"), "/source/relay_config",
                          KNOWN(RELAY_FIELDS)))
        goto fail;
    const char *req[] = { "source_name", "host", "user" };
    for (int i = 0; i < 3; i++) {
        v = json_object_get(in, req[i]);
        if (!v && old)
            v = json_object_get(old, req[i]);
        if (!json_is_string(v))
            BAD("%s/%s: %s", P, req[i], v ? "must be a string" : "is required");
        if (!json_string_length(v))
            BAD("%s/%s: must not be empty", P, req[i]);
        json_object_set(out, req[i], v);
    }
    if (!sl_name_check(json_string_value(json_object_get(out, "source_name"))))
        BAD("%s/source_name: %s", P, sl_name_rule());
    v = json_object_get(in, "port");
    if (!v && old)
        v = json_object_get(old, "port");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        BAD("%s/port: %s", P, v ? "must be an integer in 1..65535" : "is required");
    json_object_set(out, "port", v);
    if (opt_string(r, in, "password", P, 1))
        goto fail;
    v = json_object_get(in, "password");
    if (json_is_string(v))
        json_object_set(out, "password", v);
    else if (old && json_is_string(json_object_get(old, "password")))
        json_object_set(out, "password", json_object_get(old, "password"));   /* kept on PUT */
    else
        json_object_set_new(out, "password", json_string(""));
    const char *bools[] = { "enable", "enable_gtid" };
    for (int i = 0; i < 2; i++) {
        if (opt_type(r, in, bools[i], P, JSON_TRUE, "true or false"))
            goto fail;
        v = json_object_get(in, bools[i]);
        if (!v && old)
            v = json_object_get(old, bools[i]);
        json_object_set_new(out, bools[i], json_boolean(json_is_true(v)));
    }
    if (opt_string(r, in, "flavor", P, 1))
        goto fail;
    v = json_object_get(in, "flavor");
    if (json_is_string(v) && strcmp(json_string_value(v), "mysql") &&
        strcmp(json_string_value(v), "mariadb") && json_string_length(v))
        BAD("%s/flavor: must be mysql or mariadb", P);

    /* security: null or {ssl_*_content strings, cert_allowed_cn [strings]} */
    if (opt_type(r, in, "security", P, JSON_OBJECT, "an object or null"))
        goto fail;
    v = json_object_get(in, "security");
    if (json_is_object(v)) {
        json_t *sec = json_object();
        json_object_set_new(out, "security", sec);
        const char *keys[] = { "ssl_ca_content", "ssl_cert_content", "ssl_key_content" };
        for (int i = 0; i < 3; i++) {
            if (opt_string(r, v, keys[i], "/source/security", 1))
                goto fail;
            json_t *s = json_object_get(v, keys[i]);
            json_object_set_new(sec, keys[i], json_string(json_is_string(s) ? json_string_value(s) : ""));
        }
        json_t *cn = json_object_get(v, "cert_allowed_cn");
        if (cn && !json_is_null(cn)) {
            size_t i;
            json_t *x;
            if (!json_is_array(cn))
                BAD("/source/security/cert_allowed_cn: must be an array of strings");
            json_array_foreach(cn, i, x)
                if (!json_is_string(x))
                    BAD("/source/security/cert_allowed_cn/%zu: must be a string", i);
            json_object_set(sec, "cert_allowed_cn", cn);
        }
    } else if (!v && old) {
        json_object_set(out, "security", json_object_get(old, "security"));
    } else {
        json_object_set_new(out, "security", json_null());
    }
    /* a GET answer PUT back ("******" for the password and the TLS material there is): the
     * stored values, for the same server and user */
    if (old && sl__keep_masked_secrets(r, out, old, P) != 0)
        goto fail;

    /* purge: defaults 3600 / 0 / 15 */
    if (opt_type(r, in, "purge", P, JSON_OBJECT, "an object"))
        goto fail;
    {
        json_t *pin = json_object_get(in, "purge"), *pold = old ? json_object_get(old, "purge") : NULL;
        json_t *pg = json_object();
        const char *keys[] = { "interval", "expires", "remain_space" };
        const long long defs[] = { 3600, 0, 15 };
        json_object_set_new(out, "purge", pg);
        for (int i = 0; i < 3; i++) {
            json_t *x = json_object_get(pin, keys[i]);
            if (x && !json_is_null(x) && (!json_is_integer(x) || json_integer_value(x) < 0))
                BAD("/source/purge/%s: must be a non-negative integer", keys[i]);
            if (!x || json_is_null(x))
                x = json_object_get(pold, keys[i]);
            json_object_set_new(pg, keys[i], json_integer(json_is_integer(x) ? json_integer_value(x) : defs[i]));
        }
    }
    /* relay_config: kept as configuration (sluice has no relay log yet; see /relay endpoints) */
    if (opt_type(r, in, "relay_config", P, JSON_OBJECT, "an object"))
        goto fail;
    {
        json_t *rin = json_object_get(in, "relay_config");
        json_t *rold = old ? json_object_get(old, "relay_config") : NULL;
        json_t *rc = json_object();
        json_object_set_new(out, "relay_config", rc);
        if (!json_is_object(rin))
            rin = rold;
        if (opt_type(r, rin, "enable_relay", "/source/relay_config", JSON_TRUE, "true or false") ||
            opt_string(r, rin, "relay_binlog_name", "/source/relay_config", 1) ||
            opt_string(r, rin, "relay_binlog_gtid", "/source/relay_config", 1) ||
            opt_string(r, rin, "relay_dir", "/source/relay_config", 1))
            goto fail;
        json_object_set_new(rc, "enable_relay", json_boolean(json_is_true(json_object_get(rin, "enable_relay"))));
        const char *keys[] = { "relay_binlog_name", "relay_binlog_gtid", "relay_dir" };
        for (int i = 0; i < 3; i++) {
            json_t *x = json_object_get(rin, keys[i]);
            json_object_set_new(rc, keys[i], json_is_string(x) ? json_copy(x) :
                                i == 2 ? json_string("./relay_log") : json_null());
        }
        char msg[SL_ERRMSG_MAX];
        const char *sname = json_string_value(json_object_get(out, "source_name"));
        if (json_is_true(json_object_get(rc, "enable_relay")) && sname &&
            relay_dir_check(r->api, json_string_value(json_object_get(rc, "relay_dir")), sname,
                            msg, sizeof msg) != 0)
            BAD("/source/relay_config/relay_dir: %s", msg);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ---- views ------------------------------------------------------------------------------------ */

static json_t *task_names_of(sl_api *a, const char *source)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < a->ntasks; i++)
        for (size_t j = 0; j < a->tasks[i]->nsubs; j++)
            if (!strcmp(sl_subtask_source(a->tasks[i]->subs[j]), source)) {
                json_array_append_new(arr, json_string(a->tasks[i]->name));
                break;
            }
    return arr;
}

static json_t *source_status_list(sl_api *a, sl_api_source *s)
{
    char bound[256] = SL_API_WORKER_NAME;
    if (a->member)   /* the worker that runs it, "" while none is bound */
        sl_member_source_worker(a->member, s->name, bound, sizeof bound);
    json_t *st = json_pack("{s:s,s:s}", "source_name", s->name, "worker_name", bound);
    json_t *rs = st ? relay_status(a, s) : NULL;
    if (rs)
        json_object_set_new(st, "relay_status", rs);
    return json_pack("[o]", st);
}

static json_t *source_view(sl_api *a, sl_api_source *s, int with_status)
{
    json_t *v = sl__mask_passwords(s->def);
    if (v && with_status) {
        json_object_set_new(v, "task_name_list", task_names_of(a, s->name));
        json_object_set_new(v, "status_list", source_status_list(a, s));
    }
    return v;
}

/* ---- handlers --------------------------------------------------------------------------------- */

static int persist_source(sl_api *a, sl_meta_op_type t, const json_t *def, sl_error *err)
{
    json_t *sealed = sl__seal_secrets(a, def);
    char *text = sealed ? sl__dump_compact(sealed) : NULL;
    json_decref(sealed);
    if (!text)
        return sl_error_set(err, SL_ENOMEM, "cannot seal the source definition");
    int rc = sl_meta_put1(a->store, t, "source",
                          json_string_value(json_object_get(def, "source_name")), text, err);
    free(text);
    return rc;
}

static void create_source(sl_req *r)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    json_t *body = sl__body_json(r, 0);
    if (!body)
        return;
    json_t *in = source_of(r, body);
    json_t *def = in ? source_normalize(r, in, NULL) : NULL;
    json_decref(body);
    if (!def)
        return;
    const char *name = json_string_value(json_object_get(def, "source_name"));

    pthread_rwlock_rdlock(&a->lock);
    int exists = sl__source_find(a, name) != NULL;
    pthread_rwlock_unlock(&a->lock);
    if (exists) {
        sl__reply_error(r, 409, DM_ERR_SOURCE_EXISTS, "source config with ID %s already exists", name);
        json_decref(def);
        return;
    }
    char *flavor = NULL;
    if (sl__source_probe(a, def, &flavor, &err) != 0) {
        sl__reply_error(r, 400, DM_ERR_DB, "source %s: %s", name, err.msg);
        json_decref(def);
        return;
    }
    json_object_set_new(def, "flavor", json_string(flavor));
    free(flavor);

    sl_api_source *s = calloc(1, sizeof *s);
    pthread_rwlock_wrlock(&a->lock);
    if (sl__source_find(a, name)) {
        sl__reply_error(r, 409, DM_ERR_SOURCE_EXISTS, "source config with ID %s already exists", name);
    } else if (!s || !(s->name = strdup(name))) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
    } else if (persist_source(a, SL_META_CREATE, def, &err) != 0) {
        if (err.code == SL_EEXIST)
            sl__reply_error(r, 409, DM_ERR_SOURCE_EXISTS, "source config with ID %s already exists", name);
        else
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
    } else {
        s->def = json_incref(def);
        if (source_add(a, s) != 0) {
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        } else {
            relay_apply(a, s);
            s = NULL;
            sl__reply_json(r, 201, sl__mask_passwords(def));
        }
    }
    pthread_rwlock_unlock(&a->lock);
    source_free(s);
    json_decref(def);
}

static void list_sources(sl_req *r)
{
    sl_api *a = r->api;
    int with_status, relay_filter = -1;
    if (sl__query_bool(r, "with_status", &with_status))
        return;
    if (sl__query(r, "enable_relay") && sl__query_bool(r, "enable_relay", &relay_filter))
        return;
    json_t *data = json_array();
    pthread_rwlock_rdlock(&a->lock);
    for (size_t i = 0; i < a->nsources; i++) {
        sl_api_source *s = a->sources[i];
        if (relay_filter >= 0 &&
            relay_filter != json_is_true(json_object_get(json_object_get(s->def, "relay_config"),
                                                         "enable_relay")))
            continue;
        json_array_append_new(data, source_view(a, s, with_status));
    }
    pthread_rwlock_unlock(&a->lock);
    sl__reply_json(r, 200, json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(data), "data", data));
}

static void get_source(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    int with_status;
    if (sl__query_bool(r, "with_status", &with_status))
        return;
    pthread_rwlock_rdlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    if (s)
        sl__reply_json(r, 200, source_view(a, s, with_status));
    else
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
    pthread_rwlock_unlock(&a->lock);
}

/* Running subtasks on a source, as "task" names; NULL if none. Call with the lock held. */
static char *running_tasks(sl_api *a, const char *source)
{
    char *out = NULL;
    size_t len = 0;
    for (size_t i = 0; i < a->ntasks; i++)
        for (size_t j = 0; j < a->tasks[i]->nsubs; j++) {
            sl_subtask *st = a->tasks[i]->subs[j];
            if (!strcmp(sl_subtask_source(st), source) && sl_subtask_stage(st) == SL_STAGE_RUNNING) {
                size_t n = strlen(a->tasks[i]->name);
                char *p = realloc(out, len + n + 3);
                if (!p)
                    return out;
                out = p;
                len += (size_t)sprintf(out + len, "%s%s", len ? ", " : "", a->tasks[i]->name);
            }
        }
    return out;
}

/* Start or stop every subtask on the source (enable/disable). Call with the write lock held. */
static void toggle_subtasks(sl_api *a, const char *source, int enable)
{
    for (size_t i = 0; i < a->ntasks; i++)
        for (size_t j = 0; j < a->tasks[i]->nsubs; j++) {
            sl_subtask *st = a->tasks[i]->subs[j];
            if (strcmp(sl_subtask_source(st), source))
                continue;
            if (enable && sl_subtask_stage(st) != SL_STAGE_RUNNING &&
                sl_subtask_stage(st) != SL_STAGE_FINISHED) {
                sl_error err = { 0 };
                if (sl_subtask_start(st, &err) != 0)
                    sl_log(SL_LOG_WARN, "api", "enable source %s: task %s: %s", source,
                           a->tasks[i]->name, err.msg);
            } else if (!enable && sl_subtask_stage(st) == SL_STAGE_RUNNING) {
                sl_subtask_stop_request(st, 1);   /* waited for after the lock */
            }
        }
}

static void update_source(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    json_t *body = sl__body_json(r, 0);
    if (!body)
        return;
    json_t *in = source_of(r, body);
    if (!in) {
        json_decref(body);
        return;
    }
    const char *bname = json_string_value(json_object_get(in, "source_name"));
    if (bname && strcmp(bname, name)) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/source/source_name: '%s' differs from the path's '%s'",
                        bname, name);
        json_decref(body);
        return;
    }
    pthread_rwlock_rdlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    json_t *old = s ? json_deep_copy(s->def) : NULL;
    pthread_rwlock_unlock(&a->lock);
    if (!old) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
        json_decref(body);
        return;
    }
    json_object_set_new(in, "source_name", json_string(name));
    json_t *def = source_normalize(r, in, old);
    json_decref(body);
    json_decref(old);
    if (!def)
        return;
    char *flavor = NULL;
    if (sl__source_probe(a, def, &flavor, &err) != 0) {
        sl__reply_error(r, 400, DM_ERR_DB, "source %s: %s", name, err.msg);
        json_decref(def);
        return;
    }
    json_object_set_new(def, "flavor", json_string(flavor));
    free(flavor);

    pthread_rwlock_wrlock(&a->lock);
    char *running = NULL;
    s = sl__source_find(a, name);
    if (!s) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
    } else if ((running = running_tasks(a, name)) != NULL) {
        sl__reply_error(r, 409, DM_ERR_TASK_RUNNING, "source %s can only be updated when no task "
                        "runs on it; running: %s (stop them first)", name, running);
    } else if (persist_source(a, SL_META_UPDATE, def, &err) != 0) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
    } else {
        int was = json_is_true(json_object_get(s->def, "enable"));
        int now = json_is_true(json_object_get(def, "enable"));
        /* the relay restarts when anything it uses changed (not for enable alone) */
        json_t *o1 = json_deep_copy(s->def), *o2 = json_deep_copy(def);
        json_object_del(o1, "enable");
        json_object_del(o2, "enable");
        int same = o1 && o2 && json_equal(o1, o2);
        json_decref(o1);
        json_decref(o2);
        json_decref(s->def);
        s->def = json_incref(def);
        if (!same || (!s->relay && !s->relay_err))
            relay_reapply(a, s);
        if (was != now)
            toggle_subtasks(a, name, now);
        sl__reply_json(r, 200, sl__mask_passwords(def));
    }
    free(running);
    pthread_rwlock_unlock(&a->lock);
    if (r->status == 200)   /* a disable stopped subtasks: as a task's stop, bounded */
        sl_worker_wait_stopped(a->worker, NULL, 10000, NULL);
    json_decref(def);
}

int sl__tasks_delete_locked(sl_api *a, sl_api_task *t, int keep_meta, sl_task_plan **keep_plan,
                            sl_error *err);

static void delete_source(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    int force;
    if (sl__query_bool(r, "force", &force))
        return;
    pthread_rwlock_wrlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    json_t *tasks = s ? task_names_of(a, name) : NULL;
    if (!s) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
    } else if (json_array_size(tasks) && !force) {
        char *list = sl__dump_compact(tasks);
        sl__reply_error(r, 409, DM_ERR_SOURCE_HAS_TASKS, "source with name %s need to operate has "
                        "existing tasks %s, Workaround: Please `stop-task` first, or delete with "
                        "force=true (which deletes those tasks).", name, list ? list : "");
        free(list);
    } else {
        /* force: the tasks on this source go first (each deletion is its own transaction) */
        size_t i;
        json_t *x;
        int rc = 0;
        json_array_foreach(tasks, i, x) {
            sl_api_task *t = sl__task_find(a, json_string_value(x));
            if (t && (rc = sl__tasks_delete_locked(a, t, 0, NULL, &err)) != 0)
                break;
        }
        if (rc == 0)
            rc = sl_meta_put1(a->store, SL_META_DELETE, "source", name, NULL, &err);
        if (rc != 0) {
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
        } else {
            source_remove(a, s);
            sl__reply_empty(r, 204);
        }
    }
    json_decref(tasks);
    pthread_rwlock_unlock(&a->lock);
}

static void enable_source(sl_req *r, const char *name, int enable)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    pthread_rwlock_wrlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    if (!s) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
    } else {
        json_t *def = json_deep_copy(s->def);
        json_object_set_new(def, "enable", json_boolean(enable));
        if (persist_source(a, SL_META_UPDATE, def, &err) != 0) {
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
            json_decref(def);
        } else {
            json_decref(s->def);
            s->def = def;
            toggle_subtasks(a, name, enable);
            sl__reply_empty(r, 200);
        }
    }
    pthread_rwlock_unlock(&a->lock);
    if (!enable)   /* as a task's stop: bounded, and a stuck stage holds this request only */
        sl_worker_wait_stopped(a->worker, NULL, 10000, NULL);
}

static void source_status(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    pthread_rwlock_rdlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    if (!s)
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
    else
        sl__reply_json(r, 200, json_pack("{s:i,s:o}", "total", 1, "data", source_status_list(a, s)));
    pthread_rwlock_unlock(&a->lock);
}

/* Schemas / tables: copy the definition, then talk to the server without holding the lock. */
static void source_schemas(sl_req *r, const char *name, const char *schema)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    pthread_rwlock_rdlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    json_t *def = s ? json_deep_copy(s->def) : NULL;
    pthread_rwlock_unlock(&a->lock);
    if (!def) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
        return;
    }
    json_t *list = schema ? sl__source_tables(a, def, schema, &err) : sl__source_schemas(a, def, &err);
    json_decref(def);
    if (list)
        sl__reply_json(r, 200, list);
    else if (err.code == SL_ENOENT)
        sl__reply_error(r, 404, DM_ERR_DB, "schema %s does not exist on source %s: %s", schema, name, err.msg);
    else
        sl__reply_error(r, 400, DM_ERR_DB, "source %s: %s", name, err.msg);
}

/* ---- relay/enable, relay/disable, relay/purge ------------------------------------------------ */

/* Is w one of the cluster's workers (it joined once)? 1, 0, or -1 when etcd did not answer. */
static int cluster_worker_known(sl_api *a, const char *w)
{
    json_t *list = NULL, *x;
    size_t i;
    if (sl_member_list(a->member, "worker", &list, NULL) != 0)
        return -1;
    int found = 0;
    json_array_foreach(list, i, x)
        found |= !strcmp(json_string_value(json_object_get(x, "name")), w);
    json_decref(list);
    return found;
}

/* The body's worker_name_list names workers that exist: this server's one worker; in a cluster,
 * the worker the source is bound to (where its relay runs), or any worker of the cluster while
 * the source is bound to none. */
static int relay_workers_ok(sl_req *r, const char *source, json_t *body)
{
    sl_api *a = r->api;
    json_t *l = json_object_get(body, "worker_name_list"), *w;
    size_t i;
    char bound[256] = "";
    if (l && !json_is_null(l) && !json_is_array(l)) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/worker_name_list: want an array of worker names");
        return -1;
    }
    if (a->member && json_array_size(l) > 0) {
        int rc = sl_member_source_worker(a->member, source, bound, sizeof bound);
        if (rc != 0 && rc != SL_ENOENT) {
            sl__reply_error(r, 503, DM_ERR_ETCD, "reading the binding of source %s from etcd: %s",
                            source, sl_strerror(rc));
            return -1;
        }
    }
    json_array_foreach(l, i, w) {
        const char *n = json_string_value(w);
        if (!n) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/worker_name_list/%zu: want a worker name", i);
            return -1;
        }
        if (!a->member) {
            if (strcmp(n, SL_API_WORKER_NAME)) {
                sl__reply_error(r, 400, DM_ERR_WORKER_NOT_FOUND, "/worker_name_list/%zu: worker "
                                "%s not found (this sluice-server is one worker, %s)", i, n,
                                SL_API_WORKER_NAME);
                return -1;
            }
            continue;
        }
        if (bound[0] && !strcmp(n, bound))
            continue;
        int known = cluster_worker_known(a, n);
        if (known < 0) {
            sl__reply_error(r, 503, DM_ERR_ETCD, "reading the cluster's workers from etcd failed");
            return -1;
        }
        if (!known) {
            sl__reply_error(r, 400, DM_ERR_WORKER_NOT_FOUND, "/worker_name_list/%zu: dm-worker "
                            "with name %s not exists", i, n);
            return -1;
        }
        if (bound[0]) {
            /* one relay per source, on its bound worker (DM can run several) */
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/worker_name_list/%zu: the relay of source "
                            "%s runs on the worker it is bound to, %s, not on %s", i, source,
                            bound, n);
            return -1;
        }
    }
    return 0;
}

/* Unknown keys and values that are not strings (or null) are refused with their path. */
static int relay_body_ok(sl_req *r, const char *source, json_t *body, const char *const *keys,
                         size_t nkeys)
{
    const char *k;
    json_t *v;
    if (sl__unknown_field(r, body, "", keys, nkeys))
        return -1;
    json_object_foreach(body, k, v) {
        if (strcmp(k, "worker_name_list") && !json_is_string(v) && !json_is_null(v)) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/%s: want a string", k);
            return -1;
        }
    }
    return relay_workers_ok(r, source, body);
}

/*
 * POST relay/enable and relay/disable: relay_config.enable_relay (with the start file, GTID and
 * directory given) changed as a PUT of the source would change it, under the same rule (no task
 * of the source runs), and the source's tasks compiled again so that they read from the relay
 * from their next start, or from the source again.
 */
static void relay_toggle(sl_req *r, const char *name, int enable)
{
    static const char *const keys[] = { "worker_name_list", "relay_binlog_name",
                                         "relay_binlog_gtid", "relay_dir" };
    sl_api *a = r->api;
    sl_error err = { 0 };
    json_t *body = sl__body_json(r, 1);     /* the body is optional */
    if (!body)
        return;
    if (relay_body_ok(r, name, body, keys, enable ? 4 : 1) != 0) {
        json_decref(body);
        return;
    }
    pthread_rwlock_wrlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    char *running = NULL;
    json_t *def = NULL;
    if (!s) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
        goto out;
    }
    if ((running = running_tasks(a, name)) != NULL) {
        sl__reply_error(r, 409, DM_ERR_TASK_RUNNING, "the relay of source %s can only be %s when "
                        "no task runs on it; running: %s (stop them first)", name,
                        enable ? "enabled" : "disabled", running);
        goto out;
    }
    def = json_deep_copy(s->def);
    json_t *rc = json_object_get(def, "relay_config");
    if (!json_is_object(rc)) {
        rc = json_object();
        json_object_set_new(def, "relay_config", rc);
    }
    json_object_set_new(rc, "enable_relay", json_boolean(enable));
    for (size_t i = 1; enable && i < 4; i++) {
        const char *v = json_string_value(json_object_get(body, keys[i]));
        if (v)
            json_object_set_new(rc, keys[i], json_string(v));
    }
    if (enable) {
        char msg[512];
        if (relay_dir_check(a, json_string_value(json_object_get(rc, "relay_dir")), name, msg,
                            sizeof msg) != 0) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/relay_dir: %s", msg);
            goto out;
        }
    }
    if (persist_source(a, SL_META_UPDATE, def, &err) != 0) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
        goto out;
    }
    json_decref(s->def);
    s->def = def;
    def = NULL;
    relay_reapply(a, s);
    sl__reply_empty(r, 200);
out:
    pthread_rwlock_unlock(&a->lock);
    free(running);
    json_decref(def);
    json_decref(body);
}

/*
 * POST relay/purge {"relay_binlog_name": F}: delete the relay files before F, never one a task
 * of the source still needs (its checkpoint file); refused when a task's position is not known
 * (a task in its full phase, or one never synced), as the automatic purge waits then.
 */
static void relay_purge(sl_req *r, const char *name)
{
    static const char *const keys[] = { "relay_binlog_name", "relay_dir" };
    sl_api *a = r->api;
    sl_error err = { 0 };
    json_t *body = sl__body_json(r, 0);
    if (!body)
        return;
    if (relay_body_ok(r, name, body, keys, 2) != 0) {
        json_decref(body);
        return;
    }
    const char *file = json_string_value(json_object_get(body, "relay_binlog_name"));
    if (!file || !*file || strchr(file, '/')) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/relay_binlog_name: want the name of a relay "
                        "binlog file (the files before it are purged)");
        json_decref(body);
        return;
    }
    /* the read lock keeps the source and its relay in place; the relay purges under its own lock */
    pthread_rwlock_rdlock(&a->lock);
    sl_api_source *s = sl__source_find(a, name);
    char need[256], unknown[256] = "";
    if (!s) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
    } else if (!s->relay && a->member) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "source %s has no running relay log here: in a "
                        "cluster it runs on the source's bound worker, which purges it by itself "
                        "(the source's purge settings)", name);
    } else if (!s->relay) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "source %s has no running relay log%s%s", name,
                        s->relay_err ? ": " : "", s->relay_err ? s->relay_err : "");
    } else {
        int known = relay_needed_locked(a, s, need, sizeof need, unknown, sizeof unknown);
        if (known < 0) {
            sl__reply_error(r, 409, DM_ERR_TASK_RUNNING, "cannot purge the relay of source %s: "
                            "the binlog position of task %s is not known yet (it is in its full "
                            "phase or has not synced), and it may still need any relay file",
                            name, unknown);
        } else {
            int rc = sl_relay_unit_purge(s->relay, file, known == 1 ? need : NULL, &err);
            if (rc == 0)
                sl__reply_empty(r, 200);
            else if (rc == SL_ENOENT)
                sl__reply_error(r, 400, DM_ERR_OPENAPI, "/relay_binlog_name: %s", err.msg);
            else if (rc == SL_ESTATE)
                sl__reply_error(r, 409, DM_ERR_TASK_RUNNING, "%s", err.msg);
            else
                sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
        }
    }
    pthread_rwlock_unlock(&a->lock);
    json_decref(body);
}

/* POST /sources/{name}/transfer {"worker_name": W} in a cluster: the leader rebinds the source
 * to W in etcd (binding.h), with DM's errors for an unknown (46004), offline or busy (46033)
 * worker; 409 (49006) while another transfer of the source is in progress. */
static void transfer_source(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    json_t *body = sl__body_json(r, 0);
    if (!body)
        return;
    const char *w = json_string_value(json_object_get(body, "worker_name"));
    if (!w || !*w) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/worker_name: want the name of the worker to "
                        "transfer the source to");
        json_decref(body);
        return;
    }
    pthread_rwlock_rdlock(&a->lock);
    int known = sl__source_find(a, name) != NULL;
    pthread_rwlock_unlock(&a->lock);
    sl_error err = { 0 };
    int rc = known ? sl_member_transfer(a->member, name, w, NULL, &err) : SL_ENOENT;
    if (!known)
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source config with ID %s not exists", name);
    else if (rc == 0)
        sl__reply_empty(r, 200);
    else if (rc == SL_ENOENT)
        sl__reply_error(r, 404, DM_ERR_WORKER_NOT_FOUND, "%s", err.msg);
    else if (rc == SL_EEXIST || rc == SL_ESTATE)     /* busy, offline: DM's "not free" */
        sl__reply_error(r, 409, DM_ERR_WORKER_NOT_FREE, "%s", err.msg);
    else if (rc == SL_ELIMIT)                        /* another transfer of it under way */
        sl__reply_error(r, 409, DM_ERR_TRANSFER_RUNNING, "%s", err.msg);
    else
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", err.msg);
    json_decref(body);
}

static void not_implemented(sl_req *r, const char *what)
{
    sl__reply_error(r, 501, DM_ERR_NOT_IMPLEMENTED, "%s is not implemented in sluice yet: %s",
                    r->segs[r->nseg - 1], what);
}

void sl__sources_route(sl_req *r)
{
    const char *m = r->method;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST");
    if (r->nseg == 1) {
        if (get)
            list_sources(r);
        else if (post)
            create_source(r);
        else
            sl__reply_method(r, "GET, POST");
        return;
    }
    const char *name = r->segs[1];
    if (r->nseg == 2) {
        if (get)
            get_source(r, name);
        else if (!strcmp(m, "PUT"))
            update_source(r, name);
        else if (!strcmp(m, "DELETE"))
            delete_source(r, name);
        else
            sl__reply_method(r, "GET, PUT, DELETE");
        return;
    }
    const char *op = r->segs[2];
    if (r->nseg == 3 && (!strcmp(op, "enable") || !strcmp(op, "disable"))) {
        if (post)
            enable_source(r, name, !strcmp(op, "enable"));
        else
            sl__reply_method(r, "POST");
    } else if (r->nseg == 3 && !strcmp(op, "status")) {
        if (get)
            source_status(r, name);
        else
            sl__reply_method(r, "GET");
    } else if (r->nseg == 3 && !strcmp(op, "transfer")) {
        if (post && r->api->member)
            transfer_source(r, name);
        else if (post)
            not_implemented(r, "a single sluice-server is one worker, so there is no other worker "
                               "to transfer the source to");
        else
            sl__reply_method(r, "POST");
    } else if (r->nseg == 4 && !strcmp(op, "relay") &&
               (!strcmp(r->segs[3], "enable") || !strcmp(r->segs[3], "disable") ||
                !strcmp(r->segs[3], "purge"))) {
        if (!post)
            sl__reply_method(r, "POST");
        else if (!strcmp(r->segs[3], "purge"))
            relay_purge(r, name);
        else
            relay_toggle(r, name, !strcmp(r->segs[3], "enable"));
    } else if ((r->nseg == 3 || r->nseg == 4) && !strcmp(op, "schemas")) {
        if (get)
            source_schemas(r, name, r->nseg == 4 ? r->segs[3] : NULL);
        else
            sl__reply_method(r, "GET");
    }
}
