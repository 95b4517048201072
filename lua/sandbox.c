/*
 * sandbox.c - sandboxed Lua 5.4 states: a counting allocator with a hard cap, an instruction
 * budget per call (count hook; pattern matching counts against it too), only the
 * base/string/table/math/utf8 libraries with the unsafe parts removed (no files, no bytecode, no
 * __gc finalizers), and script loading and checking.
 */
#include "lua_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

/* registry[&SCRIPTS_KEY] = { script 0, 1, ... }, each { env, its string library, what
 * getmetatable("") shows it } (SCRIPT_ENV, SCRIPT_STRING, SCRIPT_STRING_MT) */
static const char SCRIPTS_KEY = 0;
static const char LOAD_KEY = 0;        /* the base library's load, under safe_load */
static const char STRING_MT_KEY = 0;   /* the metatable of strings */
enum { SCRIPT_ENV = 1, SCRIPT_STRING, SCRIPT_STRING_MT };

/* ---- memory ---------------------------------------------------------------------------------- */

/* lua_Alloc that counts every byte and refuses growth beyond the cap. Lua runs an emergency
 * collection and retries before it reports "not enough memory". Shrinking never fails. */
static void *cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sl_lua *s = ud;
    size_t old = ptr ? osize : 0;

    if (nsize == 0) {
        free(ptr);
        s->mem_used -= old;
        return NULL;
    }
    if (nsize > old && s->mem_used - old + nsize > s->mem_limit) {
        s->mem_refused = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    s->mem_used = s->mem_used - old + nsize;
    return p;
}

/* ---- instruction budget ---------------------------------------------------------------------- */

/* The hook fires at least every SLICE_MAX instructions: steps that the pattern functions
 * (pattern.c) charge in between shorten the slices after it, so instructions and steps together
 * overrun the budget by one slice at most. */
#define SLICE_MAX 65536

static uint64_t budget_left(const sl_lua *s)
{
    uint64_t used = s->spent + s->steps;
    return used < s->budget ? s->budget - used : 0;
}

static int next_slice(const sl_lua *s)
{
    uint64_t n = budget_left(s);
    return n > SLICE_MAX ? SLICE_MAX : (int)n;
}

static void budget_hook(lua_State *L, lua_Debug *ar);

/* The budget is spent: the hook re-arms itself to fire on every instruction, so a script that
 * catches the error with pcall cannot keep running: the next instruction raises again, until the
 * error leaves the script. */
static void exhaust(lua_State *L, sl_lua *s)
{
    s->slice = 0;
    s->budget_hit = 1;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
}

/* Fires every s->slice instructions, and on every instruction once the budget is spent. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    sl_lua *s = sl__lua_of(L);

    s->spent += (uint64_t)s->slice;
    if (budget_left(s) > 0) {
        s->slice = next_slice(s);
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, s->slice);
        return;
    }
    exhaust(L, s);
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: instruction budget of %I exceeded in %s", ar->short_src,
                        ar->currentline, (lua_Integer)s->budget, s->fn ? s->fn : "script");
    else
        lua_pushfstring(L, "instruction budget of %I exceeded in %s", (lua_Integer)s->budget,
                        s->fn ? s->fn : "script");
    lua_error(L);
}

int64_t sl__lua_steps_left(lua_State *L) { return (int64_t)budget_left(sl__lua_of(L)); }

void sl__lua_steps_charge(lua_State *L, uint64_t n) { sl__lua_of(L)->steps += n; }

int sl__lua_steps_exceeded(lua_State *L, const char *fname)
{
    sl_lua *s = sl__lua_of(L);
    s->steps += budget_left(s);
    exhaust(L, s);
    return luaL_error(L, "%s: pattern too complex: instruction budget of %I exceeded in %s", fname,
                      (lua_Integer)s->budget, s->fn ? s->fn : "script");
}

/* Message of the error value on top (a string or number; anything else is described, never
 * converted: a __tostring metamethod would run script code outside any protection). */
static void error_text(lua_State *L, char *buf, size_t n)
{
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        size_t len;
        const char *m = lua_tolstring(L, -1, &len);
        snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), m);
    } else {
        snprintf(buf, n, "(error object is a %s value)", luaL_typename(L, -1));
    }
}

int sl__lua_pcall(sl_lua *s, int nargs, int nres, const char *fn, sl_error *err)
{
    lua_State *L = s->L;
    char msg[SL_ERRMSG_MAX];

    s->fn = fn;
    s->spent = 0;
    s->steps = 0;
    s->budget_hit = 0;
    s->mem_refused = 0;
    s->slice = next_slice(s);
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, s->slice);
    int st = lua_pcall(L, nargs, nres, 0);
    lua_sethook(L, NULL, 0, 0);
    if (st == LUA_OK)
        return 0;
    if (st == LUA_ERRMEM) {
        lua_pop(L, 1);
        if (s->mem_refused)
            return sl_error_set(err, SL_ELIMIT, "memory limit of %zu bytes exceeded in %s",
                                s->mem_limit, fn);
        return sl_error_set(err, SL_ENOMEM, "out of memory in %s", fn);
    }
    error_text(L, msg, sizeof msg);
    lua_pop(L, 1);
    if (s->budget_hit)
        return sl_error_set(err, SL_ELIMIT, "%s", msg);
    if (s->mem_refused && strstr(msg, "not enough memory"))
        return sl_error_set(err, SL_ELIMIT, "memory limit of %zu bytes exceeded in %s (%s)",
                            s->mem_limit, fn, msg);
    return sl_error_set(err, SL_ELUA, "%s", msg);
}

/* ---- the sandbox ------------------------------------------------------------------------------ */

/* load(chunk [, chunkname [, mode [, env]]]) that only ever loads text. Without env the chunk gets
 * the calling script's environment (upvalue 2), the script's "global environment": the state's
 * own globals are the template of every script's copy, and no script may change them. */
static int safe_load(lua_State *L)
{
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 'b'))
        return luaL_error(L, "loading binary chunks is not allowed");
    int n = lua_gettop(L);
    if (n < 4) {
        lua_settop(L, 3);
        lua_pushvalue(L, lua_upvalueindex(2));
        n = 4;
    }
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));   /* the original load */
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* collectgarbage restricted to what cannot stop the collector or retune it. */
static int safe_collectgarbage(lua_State *L)
{
    static const char *const ok[] = { "collect", "count", "step", NULL };
    const char *opt = luaL_optstring(L, 1, "collect");
    for (int i = 0; ok[i]; i++)
        if (strcmp(opt, ok[i]) == 0) {
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_insert(L, 1);
            lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
            return lua_gettop(L);
        }
    return luaL_error(L, "collectgarbage('%s') is not allowed", opt);
}

/* setmetatable that refuses __gc: a finalizer would run script code at arbitrary points of the
 * host, outside any call and its budget. */
static int safe_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* print(...) -> one line to the host's print callback (tab-separated, like Lua's print). */
static int safe_print(lua_State *L)
{
    sl_lua *s = sl__lua_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;

    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        /* the buffer may keep its storage at the stack's top: a value is added from there with
         * luaL_addvalue, never popped from under the buffer (a line over LUAL_BUFFERSIZE read
         * freed memory) */
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    if (s->print)
        s->print(s->print_ud, lua_tostring(L, -1));
    return 0;
}

static void wrap_global(lua_State *L, const char *name, lua_CFunction f)
{
    lua_getglobal(L, name);
    lua_pushcclosure(L, f, 1);
    lua_setglobal(L, name);
}

/* Pushes load for the environment at index env (safe_load over the original load). */
static void push_load(lua_State *L, int env)
{
    env = lua_absindex(L, env);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &LOAD_KEY);
    lua_pushvalue(L, env);
    lua_pushcclosure(L, safe_load, 2);
}

/* Runs protected: opens the allowed libraries and removes what could escape the sandbox. The
 * globals made here are the template that each script's environment copies (make_env). */
static int open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        { LUA_GNAME, luaopen_base },
        { LUA_STRLIBNAME, luaopen_string },
        { LUA_TABLIBNAME, luaopen_table },
        { LUA_MATHLIBNAME, luaopen_math },
        { LUA_UTF8LIBNAME, luaopen_utf8 },
        { NULL, NULL },
    };
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* files and the host: gone */
    static const char *const removed[] = { "dofile", "loadfile", "require", "warn", NULL };
    for (int i = 0; removed[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");     /* no bytecode out, and none in (safe_load) */
    sl__lua_patterns_open(L);        /* matching that counts against the budget */
    lua_pop(L, 1);
    lua_getglobal(L, "load");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &LOAD_KEY);
    lua_pushglobaltable(L);
    push_load(L, -1);
    lua_setglobal(L, "load");
    lua_pop(L, 1);
    wrap_global(L, "collectgarbage", safe_collectgarbage);
    wrap_global(L, "setmetatable", safe_setmetatable);
    lua_pushcfunction(L, safe_print);
    lua_setglobal(L, "print");
    /* getmetatable("") answers with the running script's view of it (sl__lua_use_script): the
     * real one is shared by every script, which must not change it for the others */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &STRING_MT_KEY);
    lua_pop(L, 1);

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SCRIPTS_KEY);
    sl__lua_values_open(L);
    sl__lua_bind_open(L);
    return 0;
}

int sl_lua_new(const sl_lua_opts *opts, sl_lua **out, sl_error *err)
{
    sl_lua *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    s->cur_script = -1;
    s->budget = opts && opts->instruction_budget ? opts->instruction_budget : SL_LUA_DEFAULT_BUDGET;
    s->mem_limit = opts && opts->memory_limit ? opts->memory_limit : SL_LUA_DEFAULT_MEMORY;
    if (opts) {
        s->print = opts->print;
        s->print_ud = opts->print_ud;
    }
    s->L = lua_newstate(cap_alloc, s);
    if (!s->L) {
        int limited = s->mem_refused;
        free(s);
        return limited ? sl_error_set(err, SL_ELIMIT, "Lua memory limit too small")
                       : sl_error_set(err, SL_ENOMEM, "cannot create a Lua state");
    }
    *(sl_lua **)lua_getextraspace(s->L) = s;
    lua_pushcfunction(s->L, open_sandbox);
    int rc = sl__lua_pcall(s, 0, 0, "sandbox setup", err);
    if (rc < 0) {
        sl_lua_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sl_lua_free(sl_lua *s)
{
    if (!s)
        return;
    if (s->L)
        lua_close(s->L);
    for (int i = 0; i < s->nentries; i++)
        free(s->entries[i].name);
    free(s->entries);
    free(s);
}

size_t sl_lua_memory(const sl_lua *s) { return s ? s->mem_used : 0; }

/* ---- scripts ----------------------------------------------------------------------------------- */

/* The libraries a script gets its own copy of: a script may change its copy (add a helper to
 * `string`, replace `table.insert`) without changing them for the state's other scripts. */
static const char *const LIBS[] = { LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME,
                                    LUA_UTF8LIBNAME, "sluice", NULL };

static int is_lib(lua_State *L, int key)
{
    if (lua_type(L, key) != LUA_TSTRING)
        return 0;
    for (int i = 0; LIBS[i]; i++)
        if (strcmp(lua_tostring(L, key), LIBS[i]) == 0)
            return 1;
    return 0;
}

/* [table] -> [table copy] (one level). */
static void push_copy(lua_State *L, int from)
{
    from = lua_absindex(L, from);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, from)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* Protected: [chunk] -> gives the chunk a new environment: a copy of the sandbox globals with its
 * own copies of the libraries, `_G` and `load` its own; records it as the next script, makes it
 * the running one and leaves [env chunk]. Nothing a script can reach is shared with another: the
 * state's globals stay the template, and getmetatable("") shows the script's own view. */
static int make_env(lua_State *L)
{
    sl_lua *s = sl__lua_of(L);
    lua_newtable(L);                       /* 2: the script's record */
    lua_newtable(L);                       /* 3: env */
    lua_pushglobaltable(L);                /* 4 */
    lua_pushnil(L);
    while (lua_next(L, 4)) {
        if (is_lib(L, -2) && lua_type(L, -1) == LUA_TTABLE) {
            push_copy(L, -1);
            lua_replace(L, -2);
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 3);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, 3, LUA_GNAME);
    push_load(L, 3);
    lua_setfield(L, 3, "load");
    lua_pushvalue(L, 3);
    lua_rawseti(L, 2, SCRIPT_ENV);
    lua_getfield(L, 3, LUA_STRLIBNAME);
    lua_rawseti(L, 2, SCRIPT_STRING);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &STRING_MT_KEY);
    push_copy(L, -1);
    lua_getfield(L, 3, LUA_STRLIBNAME);
    lua_setfield(L, -2, "__index");
    lua_pushnil(L);
    lua_setfield(L, -2, "__metatable");
    lua_rawseti(L, 2, SCRIPT_STRING_MT);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SCRIPTS_KEY);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, (lua_Integer)s->nscripts + 1);
    lua_pop(L, 1);
    s->cur_script = -1;                    /* a failed load may have left this id behind */
    sl__lua_use_script(L, s->nscripts);
    lua_pushvalue(L, 3);
    if (!lua_setupvalue(L, 1, 1))          /* a main chunk's only upvalue is _ENV */
        lua_pop(L, 1);
    lua_remove(L, 2);
    lua_insert(L, 1);
    return 2;
}

void sl__lua_use_script(lua_State *L, int script)
{
    sl_lua *s = sl__lua_of(L);
    if (s->cur_script == script)
        return;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &STRING_MT_KEY);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SCRIPTS_KEY);
    lua_rawgeti(L, -1, script + 1);
    lua_rawgeti(L, -1, SCRIPT_STRING);
    lua_setfield(L, -4, "__index");
    lua_rawgeti(L, -1, SCRIPT_STRING_MT);
    lua_setfield(L, -4, "__metatable");
    lua_pop(L, 3);
    s->cur_script = script;
}

int sl_lua_load(sl_lua *s, const char *src, size_t len, const char *chunkname, sl_error *err)
{
    lua_State *L = s->L;
    char name[512];
    char msg[SL_ERRMSG_MAX];

    snprintf(name, sizeof name, "@%s", chunkname ? chunkname : "script");
    s->mem_refused = 0;
    int st = luaL_loadbufferx(L, src, len, name, "t");
    if (st != LUA_OK) {
        if (st == LUA_ERRMEM) {
            lua_pop(L, 1);
            return sl_error_set(err, s->mem_refused ? SL_ELIMIT : SL_ENOMEM,
                                "%s: out of memory loading the script", name + 1);
        }
        error_text(L, msg, sizeof msg);
        lua_pop(L, 1);
        return sl_error_set(err, SL_ELUA, "%s", msg);
    }
    lua_pushcfunction(L, make_env);
    lua_insert(L, -2);
    int rc = sl__lua_pcall(s, 1, 2, "script setup", err);
    if (rc < 0)
        return rc;
    /* stack: env chunk */
    int id = s->nscripts++;
    rc = sl__lua_pcall(s, 0, 0, "the script's top level", err);
    lua_pop(L, 1);
    return rc < 0 ? rc : id;
}

/* Push script's env. */
static void push_env(lua_State *L, int script)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SCRIPTS_KEY);
    lua_rawgeti(L, -1, script + 1);
    lua_rawgeti(L, -1, SCRIPT_ENV);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Protected: [env name] -> the global function's registry ref or a typed complaint. A function
 * of the sandbox (print, ...) is in every env but is not the script's: "not defined". */
static int resolve_entry(lua_State *L)
{
    lua_pushvalue(L, 2);
    int t = lua_rawget(L, 1);
    lua_pushglobaltable(L);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (t != LUA_TNIL && lua_rawequal(L, -1, -3))
        t = LUA_TNIL;
    lua_pop(L, 2);
    if (t != LUA_TFUNCTION) {
        lua_pushinteger(L, t);
        return 1;
    }
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushinteger(L, -1000 - ref);   /* distinguishable from type codes */
    return 1;
}

/* Look fn up in script's environment: returns the registry ref (>= 0) or a negative code. */
static int lookup_entry(sl_lua *s, int script, const char *fn, const char *chunk, sl_error *err)
{
    lua_State *L = s->L;
    if (script < 0 || script >= s->nscripts || !fn || !*fn)
        return sl_error_set(err, SL_EINVAL, "no such script or entry function");
    lua_pushcfunction(L, resolve_entry);
    push_env(L, script);
    lua_pushstring(L, fn);
    int rc = sl__lua_pcall(s, 2, 1, "entry lookup", err);
    if (rc < 0)
        return rc;
    lua_Integer r = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (r <= -1000)
        return (int)(-1000 - r);
    if (r == LUA_TNIL)
        return sl_error_set(err, SL_ENOENT, "%s: entry function '%s' is not defined", chunk, fn);
    return sl_error_set(err, SL_EINVAL, "%s: entry function '%s' is a %s, not a function", chunk, fn,
                        lua_typename(L, (int)r));
}

int sl_lua_entry(sl_lua *s, int script, const char *fn, sl_error *err)
{
    for (int i = 0; i < s->nentries; i++)
        if (s->entries[i].script == script && strcmp(s->entries[i].name, fn) == 0)
            return i;
    char chunk[32];
    snprintf(chunk, sizeof chunk, "script %d", script);
    int ref = lookup_entry(s, script, fn, chunk, err);
    if (ref < 0)
        return ref;
    struct sl__lua_entry *ne = realloc(s->entries, (size_t)(s->nentries + 1) * sizeof *ne);
    if (!ne) {
        luaL_unref(s->L, LUA_REGISTRYINDEX, ref);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    s->entries = ne;
    if (!(ne[s->nentries].name = strdup(fn))) {
        luaL_unref(s->L, LUA_REGISTRYINDEX, ref);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    ne[s->nentries].script = script;
    ne[s->nentries].ref = ref;
    return s->nentries++;
}

int sl__lua_entry_ref(const sl_lua *s, int entry)
{
    return entry >= 0 && entry < s->nentries ? s->entries[entry].ref : LUA_NOREF;
}

int sl_lua_check(const char *src, size_t len, const char *chunkname,
                 const char *const *entry_fns, sl_error *err)
{
    sl_lua *s;
    const char *name = chunkname ? chunkname : "script";
    int rc = sl_lua_new(NULL, &s, err);
    if (rc < 0)
        return rc;
    int id = sl_lua_load(s, src ? src : "", src ? len : 0, name, err);
    if (id < 0) {
        sl_lua_free(s);
        return id;
    }
    for (size_t i = 0; entry_fns && entry_fns[i]; i++) {
        if (!*entry_fns[i])
            continue;
        rc = lookup_entry(s, id, entry_fns[i], name, err);
        if (rc < 0) {
            sl_lua_free(s);
            /* a missing or mistyped entry is a script error like any other */
            if ((rc == SL_ENOENT || rc == SL_EINVAL) && err)
                err->code = SL_ELUA;
            return rc == SL_ENOENT || rc == SL_EINVAL ? SL_ELUA : rc;
        }
    }
    sl_lua_free(s);
    return 0;
}
