/*
 * metrics.c - GET /metrics in Prometheus's text exposition format (version 0.0.4): the HTTP
 * requests this server answered (counters by route, method and code; a latency histogram by
 * route; every label from a fixed set), every subtask's progress read from its status (stage,
 * dump and load progress, lag, events, errors and automatic resumes), every pipeline stage's counters and queue depth, and the
 * process's memory and threads. Names follow Prometheus's conventions: counters end in _total,
 * units are base units (_seconds, _bytes).
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency buckets (seconds): the API answers most requests in well under a millisecond; a
 * request that connects to a source takes tens of milliseconds. */
static const double BUCKETS[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5, 1, 2.5, 5, 10 };
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])
/* Bounded label sets, whatever clients send: routes are the path templates of http.c (a path
 * that fits none is "unknown", a refused request "denied"), methods the ones the API knows (any
 * other is "other"), codes the ones the server answers with. Every combination has its counter
 * from the start, so no request can take another's place. */
static const char *const METHODS[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
                                       "other" };
#define NMETHODS (sizeof METHODS / sizeof METHODS[0])
static const unsigned CODES[] = { 200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 406, 408,
                                  409, 411, 413, 414, 415, 416, 429, 431, 500, 501, 502, 503, 504 };
#define NCODES (sizeof CODES / sizeof CODES[0] + 1)   /* the last: code "other" */

typedef struct route_hist {
    uint64_t buckets[NBUCKETS], count;
    double   sum;
} route_hist;

struct sl_metrics {
    pthread_mutex_t mu;
    size_t          nroutes;
    route_hist     *h;         /* [route] */
    uint64_t       *n;         /* [route][method][code] */
};

int sl__metrics_new(sl_api *a)
{
    sl_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->nroutes = sl__route_count();
    m->h = calloc(m->nroutes, sizeof *m->h);
    m->n = calloc(m->nroutes * NMETHODS * NCODES, sizeof *m->n);
    if (!m->h || !m->n) {
        free(m->h);
        free(m->n);
        free(m);
        return SL_ENOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    a->metrics = m;
    return 0;
}

void sl__metrics_free(sl_api *a)
{
    if (!a->metrics)
        return;
    pthread_mutex_destroy(&a->metrics->mu);
    free(a->metrics->h);
    free(a->metrics->n);
    free(a->metrics);
    a->metrics = NULL;
}

/* The index of route among sl__route_at(); one that is not there (none should be) is "unknown". */
static size_t route_index(const char *route)
{
    size_t n = sl__route_count(), unknown = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = sl__route_at(i);
        if (!strcmp(t, route))
            return i;
        if (!strcmp(t, "unknown"))
            unknown = i;
    }
    return unknown;
}

static size_t method_index(const char *method)
{
    for (size_t i = 0; method && i + 1 < NMETHODS; i++)
        if (!strcmp(METHODS[i], method))
            return i;
    return NMETHODS - 1;
}

static size_t code_index(unsigned code)
{
    for (size_t i = 0; i + 1 < NCODES; i++)
        if (CODES[i] == code)
            return i;
    return NCODES - 1;
}

void sl__metrics_http(sl_api *a, const sl_req *r, const char *method, double seconds)
{
    sl_metrics *m = a->metrics;
    if (!m)
        return;
    size_t ri = route_index(r->route[0] ? r->route : "unknown");
    /* a request that ends without a reply is answered 500 by send_reply */
    size_t k = (ri * NMETHODS + method_index(method)) * NCODES + code_index(r->status ? r->status : 500);
    pthread_mutex_lock(&m->mu);
    route_hist *h = &m->h[ri];
    for (size_t b = 0; b < NBUCKETS; b++)
        if (seconds <= BUCKETS[b])
            h->buckets[b]++;
    h->count++;
    h->sum += seconds;
    m->n[k]++;
    pthread_mutex_unlock(&m->mu);
}

/* ---- text format --------------------------------------------------------------------------- */

/* A label value with \, " and newline escaped. */
static void lv(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*s, f);
    }
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric name part from a plugin's metric key: [a-z0-9_] only. */
static void name_part(char *out, size_t n, const char *k)
{
    size_t o = 0;
    for (; *k && o + 1 < n; k++)
        out[o++] = isalnum((unsigned char)*k) ? (char)tolower((unsigned char)*k) : '_';
    out[o] = 0;
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static void http_metrics(FILE *f, sl_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    head(f, "sluice_http_requests_total", "counter",
         "HTTP requests answered, by route (path template), method and status code.");
    for (size_t ri = 0; ri < m->nroutes; ri++)
        for (size_t mi = 0; mi < NMETHODS; mi++)
            for (size_t ci = 0; ci < NCODES; ci++) {
                uint64_t n = m->n[(ri * NMETHODS + mi) * NCODES + ci];
                if (!n)
                    continue;
                fprintf(f, "sluice_http_requests_total{route=\"%s\",method=\"%s\",code=\"",
                        sl__route_at(ri), METHODS[mi]);
                if (ci + 1 < NCODES)
                    fprintf(f, "%u", CODES[ci]);
                else
                    fputs("other", f);
                fprintf(f, "\"} %llu\n", (unsigned long long)n);
            }
    head(f, "sluice_http_request_duration_seconds", "histogram",
         "Time from a request's first byte to its answer being queued, by route.");
    for (size_t ri = 0; ri < m->nroutes; ri++) {
        const route_hist *h = &m->h[ri];
        const char *route = sl__route_at(ri);
        if (!h->count)
            continue;
        for (size_t b = 0; b < NBUCKETS; b++)
            fprintf(f, "sluice_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route, BUCKETS[b], (unsigned long long)h->buckets[b]);
        fprintf(f, "sluice_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                route, (unsigned long long)h->count);
        fprintf(f, "sluice_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n", route, h->sum);
        fprintf(f, "sluice_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route,
                (unsigned long long)h->count);
    }
    pthread_mutex_unlock(&m->mu);
}

/* One family over every subtask: fn prints the samples of one subtask status. */
typedef struct fam {
    const char *name, *type, *help;
    void (*fn)(FILE *f, const struct fam *fm, const json_t *st, const char *labels);
    const char *obj, *key;     /* for the simple ones: status[obj][key] */
} fam;

static void simple(FILE *f, const fam *fm, const json_t *st, const char *labels)
{
    const json_t *o = fm->obj ? json_object_get(st, fm->obj) : st;
    if (json_is_object(o) && json_object_get(o, fm->key))
        fprintf(f, "%s{%s} %.17g\n", fm->name, labels, num(o, fm->key));
}

/* The lag, only while the status knows it (sync_status.lag_known): an unknown lag shown as 0
 * would read "caught up" and keep the lag alert quiet. */
static void lag(FILE *f, const fam *fm, const json_t *st, const char *labels)
{
    const json_t *o = json_object_get(st, "sync_status");
    if (json_is_true(json_object_get(o, "lag_known")))
        fprintf(f, "%s{%s} %.17g\n", fm->name, labels, num(o, "seconds_behind_master"));
}

static void stage_enum(FILE *f, const fam *fm, const json_t *st, const char *labels)
{
    static const char *const stages[] = { "New", "Running", "Paused", "Stopped", "Finished" };
    const char *cur = json_string_value(json_object_get(st, "stage"));
    for (size_t i = 0; i < 5; i++)
        fprintf(f, "%s{%s,stage=\"%s\"} %d\n", fm->name, labels, stages[i],
                cur && !strcmp(cur, stages[i]));
}

static void dump_finished_tables(FILE *f, const fam *fm, const json_t *st, const char *labels)
{
    const json_t *d = json_object_get(st, "dump_status");
    if (json_is_object(d))
        fprintf(f, "%s{%s} %.17g\n", fm->name, labels, num(d, "completed_tables"));
}

static const fam FAMS[] = {
    { "sluice_subtask_stage", "gauge", "1 for the subtask's current stage (DM's stages), 0 for the others.",
      stage_enum, NULL, NULL },
    { "sluice_dump_finished_rows", "gauge", "Rows the dump has written so far.",
      simple, "dump_status", "finished_rows" },
    { "sluice_dump_finished_bytes", "gauge", "Bytes the dump has written so far.",
      simple, "dump_status", "finished_bytes" },
    { "sluice_dump_estimated_rows", "gauge", "Rows the dump expects (the source's estimate).",
      simple, "dump_status", "estimate_total_rows" },
    { "sluice_dump_tables", "gauge", "Tables the dump copies.",
      simple, "dump_status", "total_tables" },
    { "sluice_dump_completed_tables", "gauge", "Tables the dump has finished.",
      dump_finished_tables, NULL, NULL },
    { "sluice_load_finished_bytes", "gauge", "Bytes of dump files loaded into the target so far.",
      simple, "load_status", "finished_bytes" },
    { "sluice_load_size_bytes", "gauge", "Bytes of dump files to load (known once the dump is complete).",
      simple, "load_status", "total_bytes" },
    { "sluice_replication_lag_seconds", "gauge", "Seconds the target is behind the source (DM's seconds_behind_master); no sample while unknown, growing while Paused.",
      lag, NULL, NULL },
    { "sluice_sync_events_total", "counter", "Binlog events the sync unit has handled (DM's total_events).",
      simple, "sync_status", "total_events" },
    { "sluice_sync_rows_not_found_total", "counter", "UPDATE and DELETE rows of the binlog that found no row "
      "on the target (it differs from the source), since the server started.",
      simple, "sync_status", "rows_not_found" },
    { "sluice_sync_target_warnings_total", "counter", "Values of row changes the target changed as it "
      "wrote them (the warnings of the sink's statements: a column narrower than the source's, a "
      "character its character set lacks, ...), since the server started.",
      simple, "sync_status", "target_warnings" },
    { "sluice_subtask_errors_total", "counter", "Errors that paused the subtask since the server started.",
      simple, "auto_resume", "errors" },
    { "sluice_subtask_resumes_total", "counter", "Automatic resumes of the subtask since the server started.",
      simple, "auto_resume", "resumes" },
};
#define NFAMS (sizeof FAMS / sizeof FAMS[0])

/* Every subtask status with its label text; call with a.lock held. */
typedef struct sub { json_t *st; char labels[512]; } sub;

static void labels_of(char *out, size_t n, const json_t *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        snprintf(out, n, "task=\"\",source=\"\"");
        return;
    }
    fputs("task=\"", f);
    lv(f, json_string_value(json_object_get(st, "name")));
    fputs("\",source=\"", f);
    lv(f, json_string_value(json_object_get(st, "source_name")));
    fputc('"', f);
    fclose(f);
    snprintf(out, n, "%s", buf ? buf : "");
    free(buf);
}

static void stage_metrics(FILE *f, sub *subs, size_t ns)
{
    /* One family per metric key seen in any stage: group the samples by name. */
    json_t *names = json_object();
    for (size_t i = 0; i < ns; i++) {
        size_t k;
        json_t *stg;
        json_array_foreach(json_object_get(subs[i].st, "stages"), k, stg) {
            const char *key;
            json_t *v;
            json_object_foreach(json_object_get(stg, "metrics"), key, v)
                json_object_set_new(names, key, json_true());
        }
    }
    const char *key;
    json_t *dummy;
    json_object_foreach(names, key, dummy) {
        char part[64], name[128];
        name_part(part, sizeof part, key);
        snprintf(name, sizeof name, "sluice_stage_%s_total", part);
        fprintf(f, "# HELP %s The stage's counter \"%s\" (its plugin's metric, or the host's "
                "batches/events in and out), this run of the pipeline.\n# TYPE %s counter\n",
                name, key, name);
        for (size_t i = 0; i < ns; i++) {
            size_t k;
            json_t *stg;
            json_array_foreach(json_object_get(subs[i].st, "stages"), k, stg) {
                json_t *v = json_object_get(json_object_get(stg, "metrics"), key);
                if (!json_is_number(v))
                    continue;
                fprintf(f, "%s{%s,stage=\"", name, subs[i].labels);
                lv(f, json_string_value(json_object_get(stg, "id")));
                fputs("\",plugin=\"", f);
                lv(f, json_string_value(json_object_get(stg, "plugin")));
                fprintf(f, "\"} %.17g\n", json_number_value(v));
            }
        }
    }
    json_decref(names);
    head(f, "sluice_stage_queue_batches", "gauge", "Batches waiting in the stage's input queue.");
    for (size_t i = 0; i < ns; i++) {
        size_t k;
        json_t *stg;
        json_array_foreach(json_object_get(subs[i].st, "stages"), k, stg) {
            json_t *q = json_object_get(stg, "queue_batches");
            if (!json_is_integer(q))
                continue;
            fprintf(f, "sluice_stage_queue_batches{%s,stage=\"", subs[i].labels);
            lv(f, json_string_value(json_object_get(stg, "id")));
            fputs("\",plugin=\"", f);
            lv(f, json_string_value(json_object_get(stg, "plugin")));
            fprintf(f, "\"} %lld\n", (long long)json_integer_value(q));
        }
    }
}

/* VmRSS and Threads of /proc/self/status. */
static void process_metrics(FILE *f)
{
    FILE *p = fopen("/proc/self/status", "r");
    char line[256];
    long long rss = -1, threads = -1;
    while (p && fgets(line, sizeof line, p)) {
        if (!strncmp(line, "VmRSS:", 6))
            rss = atoll(line + 6) * 1024;
        else if (!strncmp(line, "Threads:", 8))
            threads = atoll(line + 8);
    }
    if (p)
        fclose(p);
    if (rss >= 0) {
        head(f, "process_resident_memory_bytes", "gauge", "Resident memory of sluice-server.");
        fprintf(f, "process_resident_memory_bytes %lld\n", rss);
    }
    if (threads >= 0) {
        head(f, "process_threads", "gauge", "Threads of sluice-server.");
        fprintf(f, "process_threads %lld\n", threads);
    }
}

void sl__metrics_reply(sl_req *r)
{
    sl_api *a = r->api;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }
    if (a->metrics)
        http_metrics(f, a->metrics);

    pthread_rwlock_rdlock(&a->lock);
    size_t ns = 0, cap = 0;
    for (size_t i = 0; i < a->ntasks; i++)
        cap += a->tasks[i]->nsubs;
    sub *subs = calloc(cap ? cap : 1, sizeof *subs);
    for (size_t i = 0; subs && i < a->ntasks; i++)
        for (size_t j = 0; j < a->tasks[i]->nsubs; j++) {
            json_t *st = sl_subtask_status(a->tasks[i]->subs[j]);
            if (!st)
                continue;
            subs[ns].st = st;
            labels_of(subs[ns].labels, sizeof subs[ns].labels, st);
            ns++;
        }
    pthread_rwlock_unlock(&a->lock);

    for (size_t k = 0; k < NFAMS; k++) {
        head(f, FAMS[k].name, FAMS[k].type, FAMS[k].help);
        for (size_t i = 0; i < ns; i++)
            FAMS[k].fn(f, &FAMS[k], subs[i].st, subs[i].labels);
    }
    stage_metrics(f, subs, ns);
    process_metrics(f);
    for (size_t i = 0; i < ns; i++)
        json_decref(subs[i].st);
    free(subs);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }
    sl__reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}
