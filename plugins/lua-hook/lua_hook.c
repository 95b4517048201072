/*
 * lua_hook.c - the lua-hook transform: runs the task's Lua scripts (on_row / on_ddl) on the events
 * of the tables each script names, writes their changes back into the batch (arena memory),
 * marks dropped events SL_EVF_DROPPED, and pauses the task on the first script error. One
 * sandboxed Lua state per worker thread. The script API is docs/lua.md.
 */
#include <sluice/plugin.h>
#include <sluice/match.h>
#include <sluice/lua.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lua_hook.h"

typedef struct lh_config {
    char   *scripts;
    char   *source_name;
    int64_t instruction_budget;
    int64_t memory_limit_mb;
} lh_config;

static const sl_option lh_options[] = {
    { .name = "scripts", .type = SL_OPT_JSON, .flags = SL_OPTF_REQUIRED, .offset = offsetof(lh_config, scripts),
      .desc = "[{\"tables\": [{\"schema\": pat, \"table\": pat}], \"file\": path or \"\", \"source\": inline "
              "text or \"\", \"on_row\": name or \"\", \"on_ddl\": name or \"\"}] (docs/lua.md)" },
    { .name = "source_name", .type = SL_OPT_STRING, .def = "\"\"", .offset = offsetof(lh_config, source_name),
      .desc = "the source this stage runs for: a table entry of a script with another \"source_name\" "
              "is ignored (\"\" = every entry applies)" },
    { .name = "instruction_budget", .type = SL_OPT_INT, .def = "1000000", .min = 1000, .max = (int64_t)1 << 40,
      .offset = offsetof(lh_config, instruction_budget),
      .desc = "Lua instructions one call of a script may run before it fails the task" },
    { .name = "memory_limit_mb", .type = SL_OPT_INT, .def = "64", .min = 1, .max = 65536,
      .offset = offsetof(lh_config, memory_limit_mb),
      .desc = "memory cap of each Lua state (one per worker thread), in MiB" },
    { .name = NULL }
};

/* ---- per-thread workers ------------------------------------------------------------------------- */

#define MATCH_CACHE 64
#define EXT_CACHE   32

typedef struct ext_entry {
    sl_table *from, *to;       /* references held by the cache */
    uint64_t  version;
    char     *names;           /* names joined by '\n' */
} ext_entry;

typedef struct lh_worker {
    pthread_t  tid;
    sl_lua    *L;
    int       *row_entry, *ddl_entry;   /* per script: entry id or -1 */
    struct { char *schema, *table; uint64_t mask; } match[MATCH_CACHE];
    int        nmatch;
    ext_entry  ext[EXT_CACHE];
    int        next;
    sl_batch  *batch;                   /* the batch being processed (writer callbacks) */
    lh        *h;
    /* chunk rows: values live in per-row scratch memory instead of the batch arena */
    void     *(*scratch)(void *ud, size_t size);
    void      *scratch_ud;
} lh_worker;

void sl__lh_set_scratch(lh_worker *w, void *(*fn)(void *, size_t), void *ud)
{
    w->scratch = fn;
    w->scratch_ud = ud;
}

static void worker_free(lh *h, lh_worker *w)
{
    if (!w)
        return;
    sl_lua_free(w->L);
    free(w->row_entry);
    free(w->ddl_entry);
    for (int i = 0; i < w->nmatch; i++) {
        free(w->match[i].schema);
        free(w->match[i].table);
    }
    for (int i = 0; i < w->next; i++) {
        h->host->table_unref(w->ext[i].from);
        h->host->table_unref(w->ext[i].to);
        free(w->ext[i].names);
    }
    free(w);
}

static void print_line(void *ud, const char *line)
{
    lh *h = ud;
    h->host->log(h->ctx, SL_LOG_INFO, "lua: %s", line);
}

int sl__lh_worker_new(lh *h, lh_worker **out, sl_error *err)
{
    lh_worker *w = calloc(1, sizeof *w);
    if (!w)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    w->h = h;
    w->tid = pthread_self();
    w->row_entry = calloc(h->nscripts ? h->nscripts : 1, sizeof *w->row_entry);
    w->ddl_entry = calloc(h->nscripts ? h->nscripts : 1, sizeof *w->ddl_entry);
    sl_lua_opts o = { .instruction_budget = h->budget, .memory_limit = h->memory_limit,
                      .print = print_line, .print_ud = h };
    int rc = !w->row_entry || !w->ddl_entry ? sl_error_set(err, SL_ENOMEM, "out of memory")
                                            : sl_lua_new(&o, &w->L, err);
    for (int i = 0; rc == 0 && i < h->nscripts; i++) {
        lh_script *s = &h->scripts[i];
        int id = sl_lua_load(w->L, s->src, s->len, s->chunkname, err);
        if (id < 0) {
            rc = id;
            break;
        }
        w->row_entry[i] = w->ddl_entry[i] = -1;
        if (s->on_row && (w->row_entry[i] = sl_lua_entry(w->L, id, s->on_row, err)) < 0)
            rc = w->row_entry[i];
        else if (s->on_ddl && (w->ddl_entry[i] = sl_lua_entry(w->L, id, s->on_ddl, err)) < 0)
            rc = w->ddl_entry[i];
        if (rc < 0)
            sl_error_prefix(err, "%s", s->chunkname);
    }
    if (rc < 0) {
        worker_free(h, w);
        return rc;
    }
    *out = w;
    return 0;
}

void sl__lh_worker_free(lh *h, lh_worker *w) { worker_free(h, w); }

/* The calling thread's worker, created on first use. */
static int get_worker(lh *h, lh_worker **out, sl_error *err)
{
    pthread_t self = pthread_self();
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->nworkers; i++)
        if (pthread_equal(h->workers[i]->tid, self)) {
            *out = h->workers[i];
            pthread_mutex_unlock(&h->mu);
            return 0;
        }
    pthread_mutex_unlock(&h->mu);
    lh_worker *w = NULL;
    int rc = sl__lh_worker_new(h, &w, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&h->mu);
    lh_worker **nw = realloc(h->workers, (size_t)(h->nworkers + 1) * sizeof *nw);
    if (!nw) {
        pthread_mutex_unlock(&h->mu);
        worker_free(h, w);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    h->workers = nw;
    h->workers[h->nworkers++] = w;
    pthread_mutex_unlock(&h->mu);
    *out = w;
    return 0;
}

static void free_workers(lh *h)
{
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->nworkers; i++)
        worker_free(h, h->workers[i]);
    free(h->workers);
    h->workers = NULL;
    h->nworkers = 0;
    pthread_mutex_unlock(&h->mu);
}

/* ---- which scripts apply to a table ------------------------------------------------------------- */

static int script_matches(const lh_script *s, const char *schema, const char *table)
{
    if (s->none)
        return 0;
    for (int k = 0; k < s->ntables; k++) {
        if (!sl_pattern_match(s->tables[k].schema, schema))
            continue;
        if (!s->tables[k].table || sl_pattern_match(s->tables[k].table, table))
            return 1;
    }
    return s->ntables == 0;   /* no tables listed: every table */
}

/* Bit i set when script i applies to schema.table (cached per worker). */
static uint64_t match_mask(lh *h, lh_worker *w, const char *schema, const char *table)
{
    schema = schema ? schema : "";
    table = table ? table : "";
    for (int i = 0; i < w->nmatch; i++)
        if (strcmp(w->match[i].schema, schema) == 0 && strcmp(w->match[i].table, table) == 0)
            return w->match[i].mask;
    uint64_t mask = 0;
    for (int i = 0; i < h->nscripts && i < 64; i++)
        if (script_matches(&h->scripts[i], schema, table))
            mask |= (uint64_t)1 << i;
    if (w->nmatch == MATCH_CACHE) {
        for (int i = 0; i < w->nmatch; i++) {
            free(w->match[i].schema);
            free(w->match[i].table);
        }
        w->nmatch = 0;
    }
    char *s = strdup(schema), *t = strdup(table);
    if (s && t) {
        w->match[w->nmatch].schema = s;
        w->match[w->nmatch].table = t;
        w->match[w->nmatch++].mask = mask;
    } else {
        free(s);
        free(t);
    }
    return mask;
}

/* ---- the writer: batch arena and widened metadata -------------------------------------------------- */

static void *w_alloc(void *ud, size_t size)
{
    lh_worker *w = ud;
    if (w->scratch)
        return w->scratch(w->scratch_ud, size);
    return w->h->host->batch_alloc(w->batch, size);
}

/* MySQL column type that holds a value of this kind (for metadata of a derived column). */
static uint8_t mysql_type_of(const sl_value *v, uint8_t *flags, uint16_t *charset)
{
    *flags = SL_COL_NULLABLE;
    *charset = v->charset;
    switch (v->type) {
    case SL_V_INT: return 8;
    case SL_V_UINT: *flags |= SL_COL_UNSIGNED; return 8;
    case SL_V_FLOAT: return 4;
    case SL_V_DOUBLE: return 5;
    case SL_V_DECIMAL: return 246;
    case SL_V_DATE: return 10;
    case SL_V_TIME: return 19;
    case SL_V_DATETIME: return 18;
    case SL_V_TIMESTAMP: return 17;
    case SL_V_YEAR: return 13;
    case SL_V_BINARY: *flags |= SL_COL_BINARY; *charset = 63; return 252;
    case SL_V_JSON: return 245;
    case SL_V_BIT: return 16;
    case SL_V_ENUM: return 247;
    case SL_V_SET: return 248;
    case SL_V_GEOMETRY: return 255;
    case SL_V_NULL: if (!*charset) *charset = 45; return 15;
    default: return 15;
    }
}

static sl_table *w_extend(void *ud, sl_event *ev, const sl_table *meta, const char *const *names,
                          const sl_value *vals, uint32_t n)
{
    lh_worker *w = ud;
    const sl_host *host = w->h->host;
    size_t klen = 0;
    for (uint32_t i = 0; i < n; i++)
        klen += strlen(names[i]) + 1;
    char *key = malloc(klen + 1);
    if (!key)
        return NULL;
    key[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        strcat(key, names[i]);
        strcat(key, "\n");
    }
    for (int i = 0; i < w->next; i++)
        if (w->ext[i].from == meta && meta && w->ext[i].version == meta->version &&
            strcasecmp(w->ext[i].names, key) == 0) {
            free(key);
            host->batch_set_meta(w->batch, ev, w->ext[i].to);
            return ev->meta;
        }
    uint32_t base = meta ? meta->ncols : 0;
    sl_table *t = host->table_new(base + n);
    if (!t) {
        free(key);
        return NULL;
    }
    if (meta) {
        t->schema = meta->schema ? host->table_strdup(t, meta->schema) : NULL;
        t->name = meta->name ? host->table_strdup(t, meta->name) : NULL;
        t->version = meta->version;
        for (uint32_t i = 0; i < base; i++) {
            t->cols[i] = meta->cols[i];
            t->cols[i].name = meta->cols[i].name ? host->table_strdup(t, meta->cols[i].name) : NULL;
            t->cols[i].type_text = meta->cols[i].type_text ? host->table_strdup(t, meta->cols[i].type_text) : NULL;
        }
        /* keys: same column indexes (derived columns come after every existing one) */
        if (meta->npk && SL_HOST_HAS(host, table_alloc)) {
            t->pk = host->table_alloc(t, meta->npk * sizeof *t->pk);
            if (t->pk) {
                memcpy(t->pk, meta->pk, meta->npk * sizeof *t->pk);
                t->npk = meta->npk;
            }
        }
    } else {
        t->schema = ev->schema ? host->table_strdup(t, ev->schema) : NULL;
        t->name = ev->table ? host->table_strdup(t, ev->table) : NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        sl_column *c = &t->cols[base + i];
        c->name = host->table_strdup(t, names[i]);
        c->mysql_type = mysql_type_of(&vals[i], &c->flags, &c->charset);
    }
    if (w->next == EXT_CACHE) {
        for (int i = 0; i < w->next; i++) {
            host->table_unref(w->ext[i].from);
            host->table_unref(w->ext[i].to);
            free(w->ext[i].names);
        }
        w->next = 0;
    }
    if (meta) {
        host->table_ref((sl_table *)meta);
        w->ext[w->next].from = (sl_table *)meta;
        w->ext[w->next].to = t;
        w->ext[w->next].version = meta->version;
        w->ext[w->next++].names = key;
        host->batch_set_meta(w->batch, ev, t);
    } else {
        free(key);
        host->batch_set_meta(w->batch, ev, t);
        host->table_unref(t);           /* the batch holds it */
    }
    return ev->meta;
}

/* ---- processing ------------------------------------------------------------------------------------- */

static const char *where(const sl_event *ev, char *buf, size_t n)
{
    if (ev->pos.file)
        snprintf(buf, n, " (event on %s.%s at %s:%llu)", ev->schema ? ev->schema : "",
                 ev->table ? ev->table : "", ev->pos.file, (unsigned long long)ev->pos.offset);
    else
        snprintf(buf, n, " (event on %s.%s)", ev->schema ? ev->schema : "", ev->table ? ev->table : "");
    return buf;
}

int sl__lh_has_row_script(lh *h, lh_worker *w, const char *schema, const char *table)
{
    uint64_t mask = match_mask(h, w, schema, table);
    for (int i = 0; i < h->nscripts; i++)
        if (w->row_entry[i] >= 0 &&
            (i < 64 ? (int)((mask >> i) & 1) : script_matches(&h->scripts[i], schema ? schema : "", table ? table : "")))
            return 1;
    return 0;
}

int sl__lh_apply(lh *h, lh_worker *w, sl_batch *b, sl_event *ev, sl_error *err)
{
    int ddl = ev->kind == SL_EV_DDL;
    uint64_t mask = match_mask(h, w, ev->schema, ev->table);
    sl_lua_writer wr = { .ud = w, .alloc = w_alloc, .extend = w_extend };
    w->batch = b;
    for (int i = 0; i < h->nscripts; i++) {
        int applies = i < 64 ? (int)((mask >> i) & 1)
                             : script_matches(&h->scripts[i], ev->schema ? ev->schema : "", ev->table ? ev->table : "");
        if (!applies)
            continue;
        int entry = ddl ? w->ddl_entry[i] : w->row_entry[i];
        if (entry < 0)
            continue;
        int rc = sl_lua_call(w->L, entry, ev, &wr, err);
        if (rc == SL_DROP) {
            ev->flags |= SL_EVF_DROPPED;
            return SL_DROP;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int lh_process(void *self, sl_batch *b)
{
    lh *h = self;
    lh_worker *w = NULL;
    sl_error err = {0};
    char at[600];
    int64_t called = 0, dropped = 0;

    if (get_worker(h, &w, &err) < 0)
        return h->host->fail(h->ctx, err.code ? err.code : SL_ELUA, "lua-hook: %s", err.msg);
    /* chunk parts pushed while processing come after n0: they are outputs, not inputs */
    uint32_t n0 = b->n;
    for (uint32_t i = 0; i < n0; i++) {
        sl_event *ev = &b->events[i];
        if (ev->flags & SL_EVF_DROPPED)
            continue;
        int rc;
        switch (ev->kind) {
        case SL_EV_INSERT: case SL_EV_UPDATE: case SL_EV_DELETE: case SL_EV_DDL:
            rc = sl__lh_apply(h, w, b, ev, &err);
            called++;
            break;
        case SL_EV_CHUNK:
            rc = sl__lh_chunk(h, w, b, i, &err);
            ev = &b->events[i];     /* the chunk may have pushed events */
            break;
        default:
            continue;
        }
        if (rc == SL_DROP) {
            dropped++;
            continue;
        }
        if (rc < 0) {
            /* nothing of this batch is forwarded: the task pauses before anything past the
             * failing event (and the ones before it in the batch) is applied */
            return h->host->fail(h->ctx, rc, "lua-hook: %s%s", err.msg, where(ev, at, sizeof at));
        }
    }
    h->host->metric_add(h->ctx, "lua_calls", called);
    if (dropped)
        h->host->metric_add(h->ctx, "lua_dropped", dropped);
    return 0;
}

/* ---- options, lifecycle ---------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, sl_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_error_set(err, SL_ENOENT, "cannot open Lua script %s", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        if (cap >= (64u << 20)) {
            free(buf);
            buf = NULL;
            sl_error_set(err, SL_ELIMIT, "Lua script %s is larger than 64 MiB", path);
            fclose(f);
            return NULL;
        }
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    fclose(f);
    if (!buf)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    *len = n;
    return buf;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

static char *dupn(const char *s) { return s ? strdup(s) : NULL; }

int sl__lh_parse_scripts(lh *h, const char *json, sl_error *err)
{
    json_error_t je;
    json_t *root = json_loads(json ? json : "[]", 0, &je);
    if (!root || !json_is_array(root)) {
        json_decref(root);
        return sl_error_set(err, SL_EINVAL, "scripts: a JSON array is expected");
    }
    size_t n = json_array_size(root);
    h->scripts = calloc(n ? n : 1, sizeof *h->scripts);
    if (!h->scripts) {
        json_decref(root);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *o = json_array_get(root, i);
        lh_script *s = &h->scripts[i];
        h->nscripts++;
        if (!json_is_object(o)) {
            rc = sl_error_set(err, SL_EINVAL, "scripts[%zu]: an object is expected", i);
            break;
        }
        const char *file = jstr(o, "file"), *src = jstr(o, "source");
        if (!!file == !!src) {
            rc = sl_error_set(err, SL_EINVAL, "scripts[%zu]: give exactly one of \"file\" and \"source\"", i);
            break;
        }
        char name[64];
        snprintf(name, sizeof name, "lua_scripts[%zu]", i);
        s->chunkname = strdup(file ? file : name);
        s->on_row = dupn(jstr(o, "on_row"));
        s->on_ddl = dupn(jstr(o, "on_ddl"));
        if (!s->on_row && !s->on_ddl) {
            rc = sl_error_set(err, SL_EINVAL, "scripts[%zu]: name an entry function (on_row or on_ddl)", i);
            break;
        }
        if (file) {
            s->src = read_file(file, &s->len, err);
            if (!s->src) {
                rc = err ? err->code : SL_EIO;
                break;
            }
        } else {
            s->src = strdup(src);
            s->len = strlen(src);
        }
        json_t *tables = json_object_get(o, "tables");
        size_t nt = json_array_size(tables);
        s->tables = calloc(nt ? nt : 1, sizeof *s->tables);
        if (!s->chunkname || !s->src || !s->tables) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < nt && rc == 0; k++) {
            json_t *t = json_array_get(tables, k);
            const char *sp = json_string_value(json_object_get(t, "schema"));
            const char *tp = json_string_value(json_object_get(t, "table"));
            const char *sn = jstr(t, "source_name");
            /* an entry for another source's tables (the task compiler leaves them out of each
             * source's stage already; a hand-written pipeline may not) */
            if (sn && h->source_name && *h->source_name && strcmp(sn, h->source_name) != 0)
                continue;
            int j = s->ntables++;
            rc = sl_pattern_compile(sp && *sp ? sp : "*", &s->tables[j].schema, err);
            if (rc == 0 && tp && *tp)
                rc = sl_pattern_compile(tp, &s->tables[j].table, err);
            if (rc < 0)
                sl_error_prefix(err, "scripts[%zu].tables[%zu]", i, k);
        }
        s->none = nt > 0 && s->ntables == 0;
        const char *entries[] = { s->on_row, s->on_ddl, NULL };
        if (rc == 0 && !s->on_row) {
            entries[0] = s->on_ddl;
            entries[1] = NULL;
        }
        if (rc == 0)
            rc = sl_lua_check(s->src, s->len, s->chunkname, entries, err);
    }
    json_decref(root);
    return rc;
}

void sl__lh_free_scripts(lh *h)
{
    for (int i = 0; i < h->nscripts; i++) {
        lh_script *s = &h->scripts[i];
        for (int k = 0; k < s->ntables; k++) {
            sl_pattern_free(s->tables[k].schema);
            sl_pattern_free(s->tables[k].table);
        }
        free(s->tables);
        free(s->src);
        free(s->chunkname);
        free(s->on_row);
        free(s->on_ddl);
    }
    free(h->scripts);
    h->scripts = NULL;
    h->nscripts = 0;
}

static int lh_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    const lh_config *cfg = config;
    lh *h = calloc(1, sizeof *h);
    if (!h)
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    h->host = host;
    h->ctx = ctx;
    h->source_name = cfg->source_name;
    h->budget = (uint64_t)cfg->instruction_budget;
    h->memory_limit = (size_t)cfg->memory_limit_mb << 20;
    pthread_mutex_init(&h->mu, NULL);
    sl_error err = {0};
    int rc = sl__lh_parse_scripts(h, cfg->scripts, &err);
    if (rc < 0) {
        sl__lh_free_scripts(h);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return host->fail(ctx, rc, "lua-hook: %s", err.msg);
    }
    *self = h;
    return 0;
}

static int lh_start(void *self) { return 0; }

/* Called when no thread runs process(): the states go (they are made again on the next batch). */
static void lh_stop(void *self) { free_workers(self); }

static void lh_destroy(void *self)
{
    lh *h = self;
    if (!h)
        return;
    free_workers(h);
    sl__lh_free_scripts(h);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static char *lh_status(void *self)
{
    lh *h = self;
    size_t mem = 0;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->nworkers; i++)
        mem += sl_lua_memory(h->workers[i]->L);
    int nw = h->nworkers;
    pthread_mutex_unlock(&h->mu);
    char *s = h->host->alloc(128);
    if (s)
        snprintf(s, 128, "{\"scripts\":%d,\"lua_states\":%d,\"lua_memory_bytes\":%zu}", h->nscripts, nw, mem);
    return s;
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "lua-hook",
    .kind = SL_PLUGIN_TRANSFORM,
    .description = "runs the task's Lua scripts (on_row/on_ddl) on row and DDL events: keep, drop or change them",
    .options = lh_options,
    .config_size = sizeof(lh_config),
    .create = lh_create,
    .start = lh_start,
    .process = lh_process,
    .stop = lh_stop,
    .destroy = lh_destroy,
    .status = lh_status,
};
