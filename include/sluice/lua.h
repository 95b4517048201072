/*
 * lua.h - the embedded Lua 5.4 runtime of sluice: a sandboxed state (no io/os/package/debug, no
 * bytecode, a memory cap and an instruction budget per call), the bindings that hand row and DDL
 * events to user scripts (on_row / on_ddl), and the offline check the task compiler runs.
 *
 * Built as the static PIC library `sluice_lua` (Lua 5.4 and the SDK's error convention), linked
 * by the compiler and compiled into the lua-hook plugin. The user-facing API is docs/lua.md.
 */
#ifndef SLUICE_LUA_H
#define SLUICE_LUA_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_LUA_DEFAULT_BUDGET    1000000u          /* instructions per call */
#define SL_LUA_DEFAULT_MEMORY    (64u << 20)       /* bytes per state */

/*
 * Check a script the way the task compiler must: load it in a fresh sandboxed state (text only:
 * a precompiled chunk is refused), run its top level under the default instruction budget and
 * memory cap, and check that each name in entry_fns (NULL-terminated; NULL or "" entries are
 * skipped; entry_fns itself may be NULL) is a global function of the script.
 * chunkname names the script in messages (a file path, or e.g. "task.lua_scripts[0]").
 * Returns 0, or SL_ELUA with err = "chunkname:line: message" for a syntax or runtime error,
 * "chunkname: entry function 'on_row' is not defined" (or "... is a number, not a function"),
 * SL_ELIMIT when the budget or memory cap was hit, SL_ENOMEM. Thread-safe (no shared state).
 */
int sl_lua_check(const char *src, size_t len, const char *chunkname,
                 const char *const *entry_fns, sl_error *err);

/* ---- sandboxed states ---------------------------------------------------------------------- */

typedef struct sl_lua sl_lua;

typedef struct sl_lua_opts {
    uint64_t instruction_budget;   /* per call (and per script top level); 0 = default */
    size_t   memory_limit;         /* bytes for everything the state allocates; 0 = default */
    /* Where the script's print() goes (one line, NUL-terminated); NULL = discarded. */
    void   (*print)(void *ud, const char *line);
    void    *print_ud;
} sl_lua_opts;

/*
 * A new sandboxed state. opts may be NULL (defaults). Caller frees with sl_lua_free.
 * A state is NOT thread-safe: use one per thread (the lua-hook plugin keeps one per worker).
 * Returns 0 or SL_ENOMEM / SL_ELIMIT (memory_limit too small for the base libraries).
 */
int  sl_lua_new(const sl_lua_opts *opts, sl_lua **out, sl_error *err);
void sl_lua_free(sl_lua *s);

/*
 * Load a script (text only) into its own global environment (a copy of the sandbox globals, with
 * its own copies of the libraries: no script can change what another sees) and run its top level
 * under the budget. Returns the script id (>= 0), or a negative code with err filled
 * ("chunkname:line: message").
 */
int  sl_lua_load(sl_lua *s, const char *src, size_t len, const char *chunkname, sl_error *err);

/*
 * Resolve entry function fn of a loaded script. Returns an entry id (>= 0) for sl_lua_call, or
 * SL_ENOENT / SL_EINVAL with err filled when the script has no such global function.
 */
int  sl_lua_entry(sl_lua *s, int script, const char *fn, sl_error *err);

/*
 * Where changed values go. The bindings never modify an event in place before the script
 * returns; on success they write the new pointers into the event, with every new value and
 * string allocated by alloc (normally the batch arena: host->batch_alloc).
 */
typedef struct sl_lua_writer {
    void *ud;
    /* Memory that lives as long as the event. NULL on OOM. Required. */
    void *(*alloc)(void *ud, size_t size);
    /* A script assigned columns the event's table does not have (a derived column): return
     * metadata with the n named columns appended after meta's columns (types guessed from vals),
     * attached to ev so it lives as long as the event; or NULL to refuse (an error for the
     * script). May be NULL (refuse). meta may be NULL (an event without metadata). */
    sl_table *(*extend)(void *ud, sl_event *ev, const sl_table *meta,
                        const char *const *names, const sl_value *vals, uint32_t n);
} sl_lua_writer;

/*
 * Call entry(ev) for a row event (INSERT/UPDATE/DELETE) or a DDL event. The script sees ev as
 * documented in docs/lua.md (lazy: before/after are read only when indexed). Returns 0 = keep
 * (the event now carries the script's changes), SL_DROP = the script returned false, or a
 * negative code with err filled: SL_ELUA (a script error: "file:line: message"), SL_ELIMIT
 * (instruction budget or memory cap: "instruction budget of N exceeded in on_row"), SL_ENOMEM.
 * On failure ev is unchanged. Not thread-safe (one state per thread).
 */
int  sl_lua_call(sl_lua *s, int entry, sl_event *ev, const sl_lua_writer *w, sl_error *err);

/* Bytes the state currently holds (for status and tests). */
size_t sl_lua_memory(const sl_lua *s);

#ifdef __cplusplus
}
#endif
#endif
