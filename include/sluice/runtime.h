/*
 * runtime.h - the core runtime seen by the server, the CLI and tests: the plugin registry
 * (loader), option tables applied to JSON, the scheduler that owns every thread, and pipelines.
 *
 * Thread-safety: a registry is read-only after loading and may be shared by all threads. A
 * scheduler is thread-safe. A pipeline's control calls (start/pause/resume/stop/status) are
 * thread-safe with respect to each other and to the pipeline's own threads.
 */
#ifndef SLUICE_RUNTIME_H
#define SLUICE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "plugin.h"
#include "pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- plugin registry (loader) ------------------------------------------------------------ */

typedef struct sl_registry sl_registry;

/* Empty registry. Caller frees with sl_registry_free (which dlcloses every plugin). */
int  sl_registry_new(sl_registry **out);
void sl_registry_free(sl_registry *reg);

/* Load one plugin file with dlopen(RTLD_NOW | RTLD_LOCAL). Refuses, with a message naming the
 * file and the reason: a missing file, a missing `sluice_plugin` symbol, a different major ABI,
 * a descriptor shorter than SL_DESCRIPTOR_MIN_SIZE, a missing name or callback, or a name that
 * is already registered. */
int  sl_registry_load(sl_registry *reg, const char *path, sl_error *err);

/* Load every sluice-*.so in dir (sorted by name). Fails on the first bad file. */
int  sl_registry_load_dir(sl_registry *reg, const char *dir, sl_error *err);

/* Register a descriptor linked into the executable (tests, built-ins in static builds). */
int  sl_registry_add(sl_registry *reg, const sl_plugin_descriptor *d, sl_error *err);

/* Look a plugin up by name; NULL if absent. */
const sl_plugin_descriptor *sl_registry_find(const sl_registry *reg, const char *name);

size_t sl_registry_count(const sl_registry *reg);
const sl_plugin_descriptor *sl_registry_at(const sl_registry *reg, size_t i);

/* ---- capabilities (core/caps.c) --------------------------------------------------------- */

/* The capabilities of plugin d: its caps (ABI >= 1.2 and not NULL), else the defaults of its
 * kind (takes and gives every event kind and image, keeps order, at-least-once for a sink). */
void sl_plugin_caps_of(const sl_plugin_descriptor *d, sl_plugin_caps *out);

/* Checks a descriptor's caps for the loader: a known struct size, no unknown bits, a delivery
 * for a sink only. Returns 0, or SL_EABI with the reason in msg. */
int  sl_plugin_caps_check(const sl_plugin_descriptor *d, char *msg, size_t msgsz);

/* Does stage `down` fit behind stage `up` in one pipeline? `up` is what reaches down (a
 * source's caps, or the caps of everything before down folded with sl_plugin_caps_chain).
 * Returns 0, or SL_EINVAL with a sentence naming both (up_name, down_name) in msg. */
int  sl_plugin_caps_fit(const sl_plugin_caps *up, const char *up_name,
                        const sl_plugin_caps *down, const char *down_name,
                        char *msg, size_t msgsz);

/* What leaves stage `next` given what reached it (`acc` is updated in place): a transform
 * narrows the event kinds to those it gives plus those it lets pass, its images narrow
 * the input's (never widen them), and order survives only if it keeps order. */
void sl_plugin_caps_chain(sl_plugin_caps *acc, const sl_plugin_caps *next);

/* The default plugin directory: $SLUICE_PLUGIN_DIR, else <dir of the executable>/../lib/sluice/plugins,
 * else the install prefix's. Returns a static string. */
const char *sl_default_plugin_dir(void);

/* ---- options ------------------------------------------------------------------------------- */

/* One problem found while applying options; path is a JSON-pointer-like suffix ("/export_threads"). */
typedef void (*sl_option_problem_fn)(void *ud, const char *option, const char *msg);

/* Validate a JSON object of options against a descriptor's table without filling anything.
 * Calls report() for every problem (unknown option, wrong type, out of range, bad enum,
 * missing required) and returns 0 if there were none, SL_EINVAL otherwise. */
int  sl_options_check(const sl_plugin_descriptor *d, const char *json,
                      sl_option_problem_fn report, void *ud);

/* Allocate d->config_size bytes, apply defaults then the JSON object's values. Caller frees with
 * sl_options_free(d, config). */
int  sl_options_fill(const sl_plugin_descriptor *d, const char *json, void **config, sl_error *err);
void sl_options_free(const sl_plugin_descriptor *d, void *config);

/* The resolved options (defaults applied) as compact JSON, secrets shown as "******".
 * Caller frees with free(). */
char *sl_options_resolved_json(const sl_plugin_descriptor *d, const char *json);

/* ---- scheduler ----------------------------------------------------------------------------- */

typedef struct sl_scheduler sl_scheduler;

typedef struct sl_scheduler_opts {
    uint32_t max_threads;     /* all threads the scheduler may run at once (0 = 256) */
    uint32_t queue_batches;   /* capacity of each stage queue, in batches (0 = 8) */
} sl_scheduler_opts;

int  sl_scheduler_new(const sl_scheduler_opts *opts, sl_scheduler **out);
/* Stops nothing: free pipelines first. */
void sl_scheduler_free(sl_scheduler *s);
uint32_t sl_scheduler_threads_running(const sl_scheduler *s);

/* A thread of the scheduler for the host's own loops (the subtask runtime's event thread):
 * counted against max_threads like the pipelines' stage threads. Returns 0 and *out, SL_ELIMIT,
 * SL_ENOMEM or SL_EIO. Every started thread is joined once with sl_thread_join (which frees the
 * handle). Thread-safe. */
typedef struct sl__thread sl_thread;
int  sl_thread_spawn(sl_scheduler *s, const char *name, sl_thread_fn fn, void *arg, sl_thread **out);
void sl_thread_join(sl_thread *t);

/* ---- pipelines ----------------------------------------------------------------------------- */

typedef struct sl_pipeline sl_pipeline;

/* Durable per-instance key/value state behind host->state_put/state_get (e.g. the metadata
 * store). key is "<pipeline name>/<stage id>/<key>". get returns malloc'd text or NULL. */
typedef struct sl_state_store {
    void *ud;
    int   (*put)(void *ud, const char *key, const char *value);
    char *(*get)(void *ud, const char *key);
    /* May be NULL. host->shard of an instance whose context prefix ("<pipeline name>/<stage
     * id>") is prefix: *reply is malloc'd JSON text. */
    int   (*shard)(void *ud, const char *prefix, const char *request, char **reply);
} sl_state_store;

/* Instantiate every stage of spec (options filled and plugin create() called). Nothing runs yet.
 * state may be NULL (state kept in memory only). Caller frees with sl_pipeline_free. */
int  sl_pipeline_new(sl_scheduler *s, const sl_registry *reg, const sl_pipeline_spec *spec,
                     const sl_state_store *state, sl_pipeline **out, sl_error *err);

/* New|Paused -> Running: calls start() on every instance, then runs sources and stage loops. */
int  sl_pipeline_start(sl_pipeline *p);
/* Running -> Paused: cooperative; waits until every thread of the pipeline has returned.
 * Instances are kept; flush() and stop() are called. */
int  sl_pipeline_pause(sl_pipeline *p);
/* Paused -> Running (same as start). */
int  sl_pipeline_resume(sl_pipeline *p);
/* Any -> Stopped: like pause, but final. */
int  sl_pipeline_stop(sl_pipeline *p);

/* Wait up to timeout_ms (-1 = forever) until the pipeline is not Running; returns its stage. */
sl_stage sl_pipeline_wait(sl_pipeline *p, int timeout_ms);
sl_stage sl_pipeline_stage(sl_pipeline *p);

/* Copy the error that moved the pipeline to Paused (code 0 if none). */
void sl_pipeline_error(sl_pipeline *p, sl_error *out);

/* {"name":..,"stage":..,"error_msg":..,"stages":[{"id":..,"plugin":..,"metrics":{..},"status":{..}}]}
 * Caller frees with free(). */
char *sl_pipeline_status_json(sl_pipeline *p);

/* Stops if needed, destroys instances, frees. NULL is fine. */
void sl_pipeline_free(sl_pipeline *p);

/* Told when a run ends by itself: stage is SL_STAGE_FINISHED (every sink reached end of stream)
 * or SL_STAGE_PAUSED (a plugin failed; sl_pipeline_error says why). Never for a run ended by a
 * control call (pause/stop), nor for a start that failed (sl_pipeline_start returns that). Called
 * on the pipeline's last stage thread with no lock held, as its last action: it may hand p to
 * another thread that frees it, and must not free p itself nor block for long. */
typedef void (*sl_pipeline_end_fn)(void *ud, sl_pipeline *p, sl_stage stage);

/* Set the end listener (NULL = none); call before sl_pipeline_start. */
void sl_pipeline_on_end(sl_pipeline *p, sl_pipeline_end_fn fn, void *ud);

/* Call cleanup(what) (plugin.h: SL_CLEANUP_META, SL_CLEANUP_FILES) on every instance of a
 * pipeline that never ran (New) and whose plugin has the slot. Every instance is asked even
 * when one fails; returns 0 or the first failure with err naming the stage. */
int  sl_pipeline_cleanup(sl_pipeline *p, unsigned what, sl_error *err);
/* Ask stage stage_id of a pipeline that never ran (plugin.h ctl): 0 with *reply (a malloc'd
 * copy of the plugin's JSON text, or NULL; caller frees), or a negative code with err
 * (the plugin's message). SL_ESTATE if the pipeline ran, SL_ENOTSUP if no such stage takes
 * requests. */
int  sl_pipeline_ctl(sl_pipeline *p, const char *stage_id, const char *request, char **reply,
                     sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
