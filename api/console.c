/*
 * console.c - the web console: GET /console answers the page (api/assets/console.html,
 * embedded at build time like the OpenAPI document), and two sluice extensions the page needs
 * that the DM API has no word for: the lag of every subtask over the last hour, sampled by the
 * server (GET /api/v1/console/lag), and a compile without create (POST /api/v1/tasks/check).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const char sl__console_html[];
extern const size_t sl__console_html_len;

/* One sample every SL__LAG_EVERY seconds, an hour of them per subtask, for at most
 * SL__LAG_SUBTASKS subtasks: the memory is fixed whatever runs (about 100 KiB). A subtask beyond
 * the limit has no chart; one that went away gives its slot to the next. */
#define SL__LAG_EVERY    10
#define SL__LAG_SAMPLES  360
#define SL__LAG_SUBTASKS 64

typedef struct lag_ring {
    char     task[128], source[128];
    int      used, seen;               /* seen: in the last sweep */
    unsigned head, n;
    int64_t  t[SL__LAG_SAMPLES];       /* unix seconds */
    int32_t  lag[SL__LAG_SAMPLES];     /* seconds_behind_master, -1 when not replicating */
} lag_ring;

struct sl_console {
    pthread_t       thr;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             stop, started;
    lag_ring        rings[SL__LAG_SUBTASKS];
};

static lag_ring *ring_of(sl_console *c, const char *task, const char *source)
{
    lag_ring *free_slot = NULL;
    for (size_t i = 0; i < SL__LAG_SUBTASKS; i++) {
        lag_ring *g = &c->rings[i];
        if (g->used && !strcmp(g->task, task) && !strcmp(g->source, source))
            return g;
        if (!g->used && !free_slot)
            free_slot = g;
    }
    if (!free_slot || strlen(task) >= sizeof free_slot->task ||
        strlen(source) >= sizeof free_slot->source)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = 1;
    strcpy(free_slot->task, task);
    strcpy(free_slot->source, source);
    return free_slot;
}

/* One sweep: every subtask's seconds_behind_master, read from the same status GET .../status
 * answers. The statuses are taken under the API's read lock, the rings under the console's. */
static void sample(sl_api *a, sl_console *c, int64_t now)
{
    pthread_rwlock_rdlock(&a->lock);
    size_t cap = 0, ns = 0;
    for (size_t i = 0; i < a->ntasks; i++)
        cap += a->tasks[i]->nsubs;
    json_t **st = calloc(cap ? cap : 1, sizeof *st);
    for (size_t i = 0; st && i < a->ntasks; i++)
        for (size_t j = 0; j < a->tasks[i]->nsubs; j++)
            if ((st[ns] = sl_subtask_status(a->tasks[i]->subs[j])))
                ns++;
    pthread_rwlock_unlock(&a->lock);

    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < SL__LAG_SUBTASKS; i++)
        c->rings[i].seen = 0;
    for (size_t i = 0; i < ns; i++) {
        const char *task = json_string_value(json_object_get(st[i], "name"));
        const char *src = json_string_value(json_object_get(st[i], "source_name"));
        const char *stage = json_string_value(json_object_get(st[i], "stage"));
        const char *unit = json_string_value(json_object_get(st[i], "unit"));
        lag_ring *g = task && src ? ring_of(c, task, src) : NULL;
        if (!g)
            continue;
        g->seen = 1;
        json_t *v = json_object_get(json_object_get(st[i], "sync_status"), "seconds_behind_master");
        int replicating = stage && !strcmp(stage, "Running") && unit && !strcmp(unit, "Sync");
        long long lag = replicating && json_is_integer(v) ? (long long)json_integer_value(v) : -1;
        g->t[g->head] = now;
        g->lag[g->head] = lag > INT32_MAX ? INT32_MAX : (int32_t)lag;
        g->head = (g->head + 1) % SL__LAG_SAMPLES;
        if (g->n < SL__LAG_SAMPLES)
            g->n++;
    }
    for (size_t i = 0; i < SL__LAG_SUBTASKS; i++)
        if (!c->rings[i].seen)
            c->rings[i].used = 0;   /* the subtask was deleted */
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < ns; i++)
        json_decref(st[i]);
    free(st);
}

/* The sampler sleeps on a condition so that sl__console_stop does not wait for a tick. Sampling
 * on a clock is the point here (a lag history), so this is a timer, not a poll for an event. */
static void *sampler(void *arg)
{
    sl_api *a = arg;
    sl_console *c = a->console;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        pthread_mutex_unlock(&c->mu);
        sample(a, c, (int64_t)time(NULL));
        pthread_mutex_lock(&c->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += SL__LAG_EVERY;
        while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int sl__console_start(sl_api *a)
{
    sl_console *c = calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    a->console = c;
    if (pthread_create(&c->thr, NULL, sampler, a) != 0) {
        a->console = NULL;
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return SL_ENOMEM;
    }
    c->started = 1;
    return 0;
}

void sl__console_stop(sl_api *a)
{
    sl_console *c = a->console;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started)
        pthread_join(c->thr, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    a->console = NULL;
}

/* GET /api/v1/console/lag[?task=NAME]: {"interval_seconds", "data": [{"task", "source_name",
 * "samples": [[unix_seconds, lag_seconds or -1], ...]}]}, oldest sample first. */
static void lag_reply(sl_req *r)
{
    sl_console *c = r->api->console;
    const char *want = sl__query(r, "task");
    json_t *data = json_array();
    if (c) {
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < SL__LAG_SUBTASKS; i++) {
            lag_ring *g = &c->rings[i];
            if (!g->used || (want && strcmp(want, g->task)))
                continue;
            json_t *s = json_array();
            for (unsigned k = 0; k < g->n; k++) {
                unsigned at = (g->head + SL__LAG_SAMPLES - g->n + k) % SL__LAG_SAMPLES;
                json_array_append_new(s, json_pack("[I,i]", (json_int_t)g->t[at], (int)g->lag[at]));
            }
            json_array_append_new(data, json_pack("{s:s,s:s,s:o}", "task", g->task,
                                                  "source_name", g->source, "samples", s));
        }
        pthread_mutex_unlock(&c->mu);
    }
    sl__reply_json(r, 200, json_pack("{s:i,s:o}", "interval_seconds", SL__LAG_EVERY, "data", data));
}

void sl__console_route(sl_req *r)
{
    if (r->nseg == 2 && !strcmp(r->segs[1], "lag")) {
        if (!strcmp(r->method, "GET"))
            lag_reply(r);
        else
            sl__reply_method(r, "GET");
        return;
    }
    sl__reply_error(r, 404, DM_ERR_OPENAPI, "no such console resource");
}

/* POST /api/v1/tasks/check: the body of POST /api/v1/tasks, compiled by the same compiler and
 * not stored, and when it compiles, the prechecks a start runs (task_precheck.c: the shards on
 * the sources, other tasks writing its tables). 200 {"ok": bool, "errors": [{"path","msg"[,
 * "code"]}], "warnings": [...]} - a task with errors is still a good answer to "check this", so
 * it is 200 with ok false. */
void sl__console_task_check(sl_req *r)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    sl_task_plan *plan = NULL;
    json_t *probs = NULL, *warns = NULL;
    json_t *body = sl__body_json(r, 0);
    if (!body)
        return;
    json_t *tj = json_object_get(body, "task");
    if (!tj && json_object_get(body, "name"))
        tj = body;
    if (!json_is_object(tj)) {
        json_decref(body);
        sl__reply_json(r, 200, json_pack("{s:b,s:[{s:s,s:s}],s:[]}", "ok", 0, "errors", "path",
                                         "/task", "msg", "is required and must be an object",
                                         "warnings"));
        return;
    }
    /* the compiler reads the sources: it needs the lock, a read one as nothing is changed */
    const char *root = tj == body ? "" : "/task";
    sl__precheck *pc = NULL;
    pthread_rwlock_rdlock(&a->lock);
    int rc = sl__task_compile(a, tj, root, &plan, &probs, &warns, &err);
    if (rc == 0)
        pc = sl__precheck_prepare(a, plan, SL__PRECHECK_CHECK);
    pthread_rwlock_unlock(&a->lock);
    sl_task_plan_free(plan);
    if (rc != 0 && !probs) {
        json_decref(body);
        json_decref(warns);
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
        return;
    }
    /* a task that compiles is checked on its sources too (DM's precheck): what a start would
     * refuse is an error here, what it would only warn about a warning */
    if (!probs)
        probs = json_array();
    if (!warns)
        warns = json_array();
    sl__precheck_run(pc, 0, root, probs, warns);
    sl__precheck_free(pc);
    json_decref(body);
    sl__reply_json(r, 200, json_pack("{s:b,s:o,s:o}", "ok", json_array_size(probs) == 0,
                                     "errors", probs, "warnings", warns));
}

/* GET /console: the page. It holds no data and asks for everything through the API (with
 * the bearer token the user types, when the server has one), so it is served without the token:
 * a browser cannot send a header when it opens a URL. */
void sl__console_page(sl_req *r)
{
    snprintf(r->route, sizeof r->route, "/console");
    if (!r->api->opts.openapi) {   /* the page is the API's client: off with it */
        sl__reply_error(r, 404, DM_ERR_OPENAPI, "no such path: the API is off (openapi = false)");
        return;
    }
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
        sl__reply_method(r, "GET");
        return;
    }
    char *body = malloc(sl__console_html_len + 1);
    if (!body) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }
    memcpy(body, sl__console_html, sl__console_html_len + 1);
    sl__reply_raw(r, 200, "text/html; charset=utf-8", body, sl__console_html_len);
}
