/*
 * test_hook_pipeline.c - the lua-hook plugin (the real sluice-lua-hook.so, loaded by the registry)
 * in an in-process pipeline: a generator source of user rows -> lua-hook -> a checking sink.
 * Tests: masking reaches the sink, drops are marked and skipped, a script error pauses the
 * pipeline with file:line and nothing of the failing batch reaches the sink.
 * With argument "bench N": prints events/s with no hook, a keep-everything hook and the masking
 * example, and the overhead of each (bench/lua.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "sluice/runtime.h"

/* ---- gen-source: N inserts into shop.users (id, email, name), batches of 1024 --------------- */

typedef struct gen_cfg { int64_t count; char *chunk; } gen_cfg;
typedef struct gen { const sl_host *host; sl_ctx *ctx; const gen_cfg *cfg; } gen;

static const sl_option gen_opts[] = {
    { .name = "count", .type = SL_OPT_INT, .def = "10000", .offset = offsetof(gen_cfg, count), .min = 0, .max = INT64_MAX },
    { .name = "chunk", .type = SL_OPT_STRING, .def = "\"\"", .offset = offsetof(gen_cfg, chunk) },
    { .name = NULL }
};

static int gen_create(const sl_host *h, sl_ctx *ctx, const void *cfg, void **self)
{
    gen *g = h->calloc(1, sizeof *g);
    g->host = h;
    g->ctx = ctx;
    g->cfg = cfg;
    *self = g;
    return 0;
}

static int gen_start(void *self) { return 0; }

static int gen_run(void *self)
{
    gen *g = self;
    const sl_host *h = g->host;
    sl_table *t = h->table_new(3);
    t->schema = h->table_strdup(t, "shop");
    t->name = h->table_strdup(t, "users");
    t->cols[0] = (sl_column){ .name = h->table_strdup(t, "id"), .mysql_type = 8, .flags = SL_COL_PK };
    t->cols[1] = (sl_column){ .name = h->table_strdup(t, "email"), .mysql_type = 15, .charset = 45 };
    t->cols[2] = (sl_column){ .name = h->table_strdup(t, "name"), .mysql_type = 15, .charset = 45 };
    if (g->cfg->chunk && *g->cfg->chunk) {
        /* the full phase: one chunk file of shop.users routed to dw.users */
        sl_batch *b = h->batch_new(g->ctx, 4);
        sl_event *ev = h->batch_push(b, SL_EV_CHUNK);
        ev->schema = "shop";
        ev->table = "users";
        ev->target_schema = "dw";
        ev->target_table = "users";
        ev->flags = SL_EVF_SNAPSHOT;
        ev->chunk_path = h->batch_strndup(b, g->cfg->chunk, strlen(g->cfg->chunk));
        ev->chunk_id = "shop.users.0";
        ev->chunk_rows = 4;
        h->batch_set_meta(b, ev, t);
        b->flags |= SL_BATCH_TXN_END;
        h->table_unref(t);
        int rc = h->emit(g->ctx, b);
        return rc < 0 ? rc : SL_DONE;
    }
    int64_t next = 0;
    while (next < g->cfg->count) {
        if (h->should_stop(g->ctx)) {
            h->table_unref(t);
            return SL_ESTOPPED;
        }
        sl_batch *b = h->batch_new(g->ctx, 1024);
        for (int i = 0; i < 1024 && next < g->cfg->count; i++, next++) {
            sl_event *ev = h->batch_push(b, SL_EV_INSERT);
            sl_value *v = h->batch_alloc(b, 3 * sizeof *v);
            char buf[64];
            int n = snprintf(buf, sizeof buf, "user%lld@example.com", (long long)next);
            v[0] = sl_value_int(next);
            v[1] = sl_value_str(SL_V_STRING, h->batch_strndup(b, buf, (size_t)n), (uint32_t)n, 45);
            v[2] = sl_value_str(SL_V_STRING, "Some Name", 9, 45);
            ev->schema = "shop";
            ev->table = "users";
            ev->ncols = 3;
            ev->after = v;
            ev->seq = (uint64_t)next;
            h->batch_set_meta(b, ev, t);
        }
        b->flags |= SL_BATCH_TXN_END;
        int rc = h->emit(g->ctx, b);
        if (rc < 0) {
            h->table_unref(t);
            return rc;
        }
    }
    h->table_unref(t);
    return SL_DONE;
}

static void gen_destroy(void *self) { gen *g = self; g->host->free(g); }

static const sl_plugin_descriptor gen_source = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "gen-source", .kind = SL_PLUGIN_SOURCE, .description = "user rows",
    .options = gen_opts, .config_size = sizeof(gen_cfg),
    .create = gen_create, .start = gen_start, .run = gen_run, .destroy = gen_destroy,
};

/* ---- check-sink: counts rows, dropped ones, masked e-mails, and the highest id seen ---------- */

typedef struct sink_cfg { int dummy; } sink_cfg;
static atomic_llong g_rows, g_dropped, g_masked, g_max_id;
/* chunk events the sink saw (one sink thread) */
static struct { char path[512], id[128], ttable[64]; unsigned long long rows; uint32_t ncols; } g_chunks[4];
static int g_nchunks;

static const sl_option sink_opts[] = { { .name = NULL } };

static int sink_create(const sl_host *h, sl_ctx *ctx, const void *cfg, void **self)
{
    *self = (void *)h;
    return 0;
}
static int sink_start(void *self) { return 0; }

static int sink_process(void *self, sl_batch *b)
{
    long long rows = 0, dropped = 0, masked = 0, maxid = -1;
    for (uint32_t i = 0; i < b->n; i++) {
        const sl_event *ev = &b->events[i];
        if (ev->kind == SL_EV_CHUNK) {
            if (g_nchunks < 4) {
                snprintf(g_chunks[g_nchunks].path, 512, "%s", ev->chunk_path);
                snprintf(g_chunks[g_nchunks].id, 128, "%s", ev->chunk_id);
                snprintf(g_chunks[g_nchunks].ttable, 64, "%s", ev->target_table);
                g_chunks[g_nchunks].rows = (unsigned long long)ev->chunk_rows;
                g_chunks[g_nchunks].ncols = ev->meta ? ev->meta->ncols : 0;
                g_nchunks++;
            }
            continue;
        }
        if (ev->flags & SL_EVF_DROPPED) {
            dropped++;
            continue;
        }
        rows++;
        if (ev->after[1].len >= 6 && memcmp(ev->after[1].v.s, "u****@", 6) == 0)
            masked++;
        if (ev->after[0].v.i > maxid)
            maxid = ev->after[0].v.i;
    }
    atomic_fetch_add(&g_rows, rows);
    atomic_fetch_add(&g_dropped, dropped);
    atomic_fetch_add(&g_masked, masked);
    long long cur = atomic_load(&g_max_id);
    while (maxid > cur && !atomic_compare_exchange_weak(&g_max_id, &cur, maxid))
        ;
    return 0;
}
static void sink_destroy(void *self) {}

static const sl_plugin_descriptor check_sink = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "check-sink", .kind = SL_PLUGIN_SINK, .description = "counts",
    .options = sink_opts, .config_size = sizeof(sink_cfg),
    .create = sink_create, .start = sink_start, .process = sink_process, .destroy = sink_destroy,
};

/* ---- running a pipeline ---------------------------------------------------------------------- */

typedef struct fx { sl_registry *reg; sl_scheduler *sched; } fx;

static void fx_open(fx *f)
{
    sl_error e = {0};
    assert_int_equal(sl_registry_new(&f->reg), 0);
    assert_int_equal(sl_registry_add(f->reg, &gen_source, &e), 0);
    assert_int_equal(sl_registry_add(f->reg, &check_sink, &e), 0);
    if (sl_registry_load(f->reg, SLUICE_LUA_HOOK_SO, &e) != 0)
        fail_msg("%s", e.msg);
    sl_scheduler_opts o = { 0 };
    assert_int_equal(sl_scheduler_new(&o, &f->sched), 0);
    atomic_store(&g_rows, 0);
    atomic_store(&g_dropped, 0);
    atomic_store(&g_masked, 0);
    atomic_store(&g_max_id, -1);
    g_nchunks = 0;
}

static void fx_close(fx *f)
{
    sl_scheduler_free(f->sched);
    sl_registry_free(f->reg);
}

/* Run gen(count) [-> lua-hook(hook_opts)] -> check-sink; returns the final stage, error in *e. */
static const char *g_chunk_path = "";

static sl_stage run(fx *f, long long count, const char *hook_opts, sl_error *e, double *secs)
{
    char gopts[600];
    snprintf(gopts, sizeof gopts, "{\"count\": %lld, \"chunk\": \"%s\"}", count, g_chunk_path);
    sl_stage_spec st[3];
    sl_edge_spec ed[2];
    size_t n = 0;
    st[n++] = (sl_stage_spec){ .id = "gen", .plugin = "gen-source", .options_json = gopts };
    if (hook_opts)
        st[n++] = (sl_stage_spec){ .id = "lua", .plugin = "lua-hook", .options_json = (char *)hook_opts };
    st[n++] = (sl_stage_spec){ .id = "sink", .plugin = "check-sink", .options_json = "{}" };
    for (size_t i = 0; i + 1 < n; i++)
        ed[i] = (sl_edge_spec){ (uint32_t)i, (uint32_t)i + 1 };
    sl_pipeline_spec spec = { .name = "test/lua", .nstages = n, .stages = st, .nedges = n - 1, .edges = ed };
    sl_pipeline *p;
    memset(e, 0, sizeof *e);
    if (sl_pipeline_new(f->sched, f->reg, &spec, NULL, &p, e) != 0)
        fail_msg("sl_pipeline_new: %s", e->msg);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(sl_pipeline_start(p), 0);
    sl_stage s = sl_pipeline_wait(p, -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (secs)
        *secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    sl_pipeline_error(p, e);
    sl_pipeline_free(p);
    return s;
}

static char *hook_json(const char *file, const char *source, long long budget)
{
    static char buf[8192];
    char esc[4096];
    size_t k = 0;
    for (const char *s = source; s && *s && k + 3 < sizeof esc; s++) {
        if (*s == '"' || *s == '\\')
            esc[k++] = '\\';
        if (*s == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
            continue;
        }
        esc[k++] = *s;
    }
    esc[k] = '\0';
    snprintf(buf, sizeof buf, "{\"scripts\": [{\"tables\": [{\"schema\": \"shop\", \"table\": \"us*\"}], "
             "\"file\": \"%s\", \"source\": \"%s\", \"on_row\": \"on_row\", \"on_ddl\": \"\"}], "
             "\"instruction_budget\": %lld}", file ? file : "", source ? esc : "", budget);
    return buf;
}

static void test_masking_reaches_sink(void **st)
{
    fx f;
    sl_error e;
    fx_open(&f);
    assert_int_equal(run(&f, 5000, hook_json(SLUICE_EXAMPLES_DIR "/mask_email.lua", NULL, 1000000), &e, NULL),
                     SL_STAGE_FINISHED);
    assert_int_equal(atomic_load(&g_rows), 5000);
    assert_int_equal(atomic_load(&g_masked), 5000);
    fx_close(&f);
}

static void test_drops_marked(void **st)
{
    fx f;
    sl_error e;
    fx_open(&f);
    assert_int_equal(run(&f, 3000, hook_json(NULL, "function on_row(ev) return ev.after.id % 3 ~= 0 end", 1000000),
                         &e, NULL), SL_STAGE_FINISHED);
    assert_int_equal(atomic_load(&g_dropped), 1000);
    assert_int_equal(atomic_load(&g_rows), 2000);
    assert_int_equal(atomic_load(&g_masked), 0);
    fx_close(&f);
}

static void test_tables_not_named_are_untouched(void **st)
{
    fx f;
    sl_error e;
    fx_open(&f);
    char *j = hook_json(NULL, "function on_row(ev) return false end", 1000000);
    /* the script names shop.other* only */
    char *p = strstr(j, "us*");
    memcpy(p, "ot*", 3);
    assert_int_equal(run(&f, 2000, j, &e, NULL), SL_STAGE_FINISHED);
    assert_int_equal(atomic_load(&g_rows), 2000);
    fx_close(&f);
}

/* A table entry naming another source is ignored by a stage that knows its source_name. */
static void test_source_name_of_tables(void **st)
{
    static const char *const fmt =
        "{\"source_name\": \"%s\", \"scripts\": [{\"tables\": [{\"source_name\": \"src-a\", "
        "\"schema\": \"shop\", \"table\": \"us*\"}], \"source\": \"function on_row(ev) return false end\", "
        "\"on_row\": \"on_row\"}]}";
    static const char *const sources[] = { "src-b", "src-a", "" };
    static const long long rows[] = { 1500, 0, 0 };     /* other source: untouched; its own or unknown: dropped */
    for (int i = 0; i < 3; i++) {
        fx f;
        sl_error e;
        char j[1024];
        snprintf(j, sizeof j, fmt, sources[i]);
        fx_open(&f);
        assert_int_equal(run(&f, 1500, j, &e, NULL), SL_STAGE_FINISHED);
        assert_int_equal(atomic_load(&g_rows), rows[i]);
        fx_close(&f);
    }
}

static void test_error_pauses_before_the_batch(void **st)
{
    fx f;
    sl_error e;
    fx_open(&f);
    /* row 2500 sits in the third batch (ids 2048..3071) */
    assert_int_equal(run(&f, 5000, hook_json(NULL, "function on_row(ev)\n  if ev.after.id == 2500 then\n"
                                                   "    error('bad row ' .. ev.after.id)\n  end\nend", 1000000),
                         &e, NULL), SL_STAGE_PAUSED);
    if (!strstr(e.msg, "lua-hook: lua_scripts[0]:3: bad row 2500 (event on shop.users)"))
        fail_msg("error: %s", e.msg);
    assert_true(atomic_load(&g_max_id) < 2048);   /* nothing of the failing batch was applied */
    fx_close(&f);
}

static void test_endless_loop_pauses(void **st)
{
    fx f;
    sl_error e;
    fx_open(&f);
    assert_int_equal(run(&f, 100, hook_json(NULL, "function on_row(ev)\n  while true do end\nend", 10000), &e, NULL),
                     SL_STAGE_PAUSED);
    if (!strstr(e.msg, "lua_scripts[0]:2: instruction budget of 10000 exceeded in on_row"))
        fail_msg("error: %s", e.msg);
    assert_int_equal(atomic_load(&g_rows), 0);
    fx_close(&f);
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* The full phase: a chunk's rows run through the script; unchanged fields keep their exact bytes
 * (escapes included), dropped rows are left out, a routed row goes to a second chunk event. */
static void test_chunk_rewritten(void **st)
{
    char dir[] = "/tmp/sluice-lua-chunk-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/shop.users.0.tsv", dir);
    FILE *fp = fopen(path, "wb");
    fputs("1\talice@example.com\tAlice\n"
          "2\tbob@x.org\t\\N\n"
          "3\tcarol@y.com\tCa\\tr\\\\ol\n"
          "4\tdan@z.com\tDan\n", fp);
    fclose(fp);
    fx f;
    sl_error e;
    fx_open(&f);
    g_chunk_path = path;
    sl_stage s = run(&f, 0, hook_json(NULL, "function on_row(ev)\n"
                                            "  assert(ev.snapshot and ev.type == 'insert')\n"
                                            "  local r = ev.after\n"
                                            "  if r.id == 2 then return false end\n"
                                            "  r.email = r.email:sub(1, 1) .. '****' .. r.email:match('@.*$')\n"
                                            "  if r.id == 4 then ev.target_table = 'users_vip' end\n"
                                            "  return true\n"
                                            "end", 1000000), &e, NULL);
    g_chunk_path = "";
    if (s != SL_STAGE_FINISHED)
        fail_msg("%s", e.msg);
    assert_int_equal(g_nchunks, 2);
    char want[300];
    snprintf(want, sizeof want, "%s.lua", path);
    assert_string_equal(g_chunks[0].path, want);
    assert_string_equal(g_chunks[0].id, "shop.users.0");
    assert_string_equal(g_chunks[0].ttable, "users");
    assert_int_equal(g_chunks[0].rows, 2);
    assert_string_equal(slurp(g_chunks[0].path), "1\ta****@example.com\tAlice\n3\tc****@y.com\tCa\\tr\\\\ol\n");
    snprintf(want, sizeof want, "%s.lua.1", path);
    assert_string_equal(g_chunks[1].path, want);
    assert_string_equal(g_chunks[1].id, "shop.users.0/dw.users_vip");
    assert_string_equal(g_chunks[1].ttable, "users_vip");
    assert_int_equal(g_chunks[1].rows, 1);
    assert_int_equal(g_chunks[1].ncols, 3);
    assert_string_equal(slurp(g_chunks[1].path), "4\td****@z.com\tDan\n");
    unlink(g_chunks[0].path);
    unlink(g_chunks[1].path);
    unlink(path);
    rmdir(dir);
    fx_close(&f);
}

static int bench(long long n)
{
    fx f;
    sl_error e;
    double t[3];
    const char *names[3] = { "no hook", "keep-everything hook", "masking (mask_email.lua)" };
    const char *opts[3] = { NULL, NULL, NULL };
    char keep[8192], mask[8192];
    snprintf(keep, sizeof keep, "%s", hook_json(NULL, "function on_row(ev) return true end", 1000000));
    snprintf(mask, sizeof mask, "%s", hook_json(SLUICE_EXAMPLES_DIR "/mask_email.lua", NULL, 1000000));
    opts[1] = keep;
    opts[2] = mask;
    for (int i = 0; i < 3; i++) {
        fx_open(&f);
        double best = 1e9;
        for (int r = 0; r < 3; r++) {
            double s;
            if (run(&f, n, opts[i], &e, &s) != SL_STAGE_FINISHED) {
                fprintf(stderr, "%s: %s\n", names[i], e.msg);
                return 1;
            }
            if (s < best)
                best = s;
        }
        t[i] = best;
        fx_close(&f);
    }
    printf("events: %lld (in-process pipeline: generator -> [lua-hook] -> counting sink; best of 3)\n", n);
    for (int i = 0; i < 3; i++) {
        printf("%-26s %8.3f s  %10.0f events/s", names[i], t[i], (double)n / t[i]);
        if (i)
            printf("  per event +%.2f us  (%.1f%% of the no-hook pipeline's time)",
                   (t[i] - t[0]) * 1e6 / (double)n, (t[i] - t[0]) * 100.0 / t[0]);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bench") == 0)
        return bench(argc >= 3 ? atoll(argv[2]) : 1000000);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masking_reaches_sink),
        cmocka_unit_test(test_source_name_of_tables),
        cmocka_unit_test(test_drops_marked),
        cmocka_unit_test(test_tables_not_named_are_untouched),
        cmocka_unit_test(test_error_pauses_before_the_batch),
        cmocka_unit_test(test_endless_loop_pauses),
        cmocka_unit_test(test_chunk_rewritten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
