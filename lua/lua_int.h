/*
 * lua_int.h - private parts of the Lua runtime shared by sandbox.c (state, limits, loading) and
 * bind.c / values.c (event and value bindings). Not installed.
 */
#ifndef SLUICE_LUA_INT_H
#define SLUICE_LUA_INT_H

#include <lua.h>
#include <lauxlib.h>

#include "sluice/lua.h"

/* An assignment to a column the table does not have (a derived column). */
typedef struct sl__lua_extra {
    const char *name;     /* in writer memory */
    int         image;    /* 0 = before, 1 = after */
    sl_value    val;
} sl__lua_extra;

/* The event being handed to a script: pending changes are applied only when the call succeeds. */
typedef struct sl__lua_call {
    sl_event            *ev;
    const char          *fn;          /* entry name, for messages */
    const sl_lua_writer *w;
    sl_value            *img[2];      /* copy-on-write images (writer memory) or NULL */
    sl__lua_extra       *extra;       /* malloc'd, nextra used */
    uint32_t             nextra, capextra;
    const char          *target_schema, *target_table, *ddl;   /* pending, or NULL */
    int                  set_target_schema, set_target_table, set_ddl;
    int                  new_kind;     /* ev.type assigned (update -> insert/delete), or 0 */
    int                  script;       /* the script whose entry runs */
} sl__lua_call;

struct sl_lua {
    lua_State   *L;
    size_t       mem_used, mem_limit;
    int          mem_refused;          /* the allocator refused a request since the last reset */
    uint64_t     budget;               /* instructions per call */
    uint64_t     spent;                /* instructions counted in this call (slices) */
    uint64_t     steps;                /* pattern-matching steps charged to this call */
    struct sl__lua_patterns *patterns; /* pattern.c's cache of compiled patterns */
    int          slice;                /* hook count */
    const char  *fn;                   /* entry being run, for messages */
    void       (*print)(void *ud, const char *line);
    void        *print_ud;
    int          nscripts;
    int          cur_script;           /* whose string library ("x"):upper() uses; -1 = none */
    int          budget_hit;           /* the budget ran out in this call */
    /* resolved entry functions: registry refs, with the script and name of each */
    struct sl__lua_entry { char *name; int script; int ref; } *entries;
    int          nentries;
    /* the call in progress (NULL between calls); gen makes stale proxies detectable */
    sl__lua_call *call;
    uint32_t     gen;
};

typedef struct sl__lua_patterns sl__lua_patterns;

/* The sl_lua that owns L (kept in L's extra space). */
static inline sl_lua *sl__lua_of(lua_State *L) { return *(sl_lua **)lua_getextraspace(L); }

/* Run the function on top of the stack with nargs args below it, under the budget and memory
 * cap, naming fn in messages. Returns 0 (nres results pushed) or a negative code with err set
 * (the error value is popped). */
int  sl__lua_pcall(sl_lua *s, int nargs, int nres, const char *fn, sl_error *err);

/* Make the string metatable show script's own string library (its copy of `string`): called in
 * protected mode before the script's code runs. */
void sl__lua_use_script(lua_State *L, int script);

/* The pattern-matching steps the running call may still take: its instruction budget less the
 * instructions and steps counted so far (<= 0 when spent). */
int64_t sl__lua_steps_left(lua_State *L);
/* Count n steps taken against the running call's budget. */
void sl__lua_steps_charge(lua_State *L, uint64_t n);
/* The budget ran out inside fname (e.g. "string.find"): raises the error, after which the call
 * cannot go on (as when its instructions run out). */
int  sl__lua_steps_exceeded(lua_State *L, const char *fname);

/* Registry ref of an entry's function (LUA_NOREF if the id is bad). */
int  sl__lua_entry_ref(const sl_lua *s, int entry);

/* values.c: typed values and conversions. */
void sl__lua_values_open(lua_State *L);        /* metatables + the `sluice` library */
void sl__lua_push_value(lua_State *L, const sl_value *v);
/* Convert the Lua value at idx for a column modelled by `model` (a value of the column: its type,
 * charset, bits guide the conversion; type SL_V_NULL if unknown); payloads are copied with the
 * writer's alloc. Raises a Lua error ("column 'x': ...") when the value cannot be stored. */
void sl__lua_to_value(lua_State *L, int idx, const sl_value *model,
                      const sl_lua_writer *w, sl_value *out, const char *colname);

/* pattern.c: find, match, gmatch and gsub, whose steps count against the budget, set into the
 * table on top (the sandbox's string library). */
void sl__lua_patterns_open(lua_State *L);

/* bind.c */
void sl__lua_bind_open(lua_State *L);

#endif
