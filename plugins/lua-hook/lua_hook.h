/*
 * lua_hook.h - (lua-hook private) the instance state shared by lua_hook.c (options, workers,
 * row/DDL events) and chunk.c (the full phase: rows of chunk files run through the same scripts).
 */
#ifndef SLUICE_LUA_HOOK_H
#define SLUICE_LUA_HOOK_H

#include <pthread.h>
#include <sluice/plugin.h>
#include <sluice/match.h>
#include <sluice/lua.h>

typedef struct lh_script {
    char       *chunkname;      /* the file path, or "lua_scripts[i]" for inline source */
    char       *src;
    size_t      len;
    char       *on_row, *on_ddl;   /* NULL when not given */
    struct { sl_pattern *schema, *table; } *tables;   /* table NULL = every table of the schema */
    int         ntables;
    int         none;           /* every table entry named another source: applies to nothing */
} lh_script;

typedef struct lh_worker lh_worker;

typedef struct lh {
    const sl_host  *host;
    sl_ctx         *ctx;
    const char     *source_name; /* this instance's source ("" = not given) */
    uint64_t        budget;
    size_t          memory_limit;
    lh_script      *scripts;
    int             nscripts;
    pthread_mutex_t mu;          /* guards workers */
    lh_worker     **workers;
    int             nworkers;
} lh;

/* Run the scripts that apply to ev (a row or DDL event of batch b). 0 keep, SL_DROP (ev marked
 * SL_EVF_DROPPED), or a negative code with err filled. */
int  sl__lh_apply(lh *h, lh_worker *w, sl_batch *b, sl_event *ev, sl_error *err);

/* The full phase: run the row scripts over the rows of the chunk event b->events[i], writing a new
 * chunk file (and one more chunk event per other target table a script routed rows to). 0, or a
 * negative code with err filled. */
int  sl__lh_chunk(lh *h, lh_worker *w, sl_batch *b, uint32_t i, sl_error *err);

/* 1 if some script with an on_row entry applies to schema.table. */
int  sl__lh_has_row_script(lh *h, lh_worker *w, const char *schema, const char *table);

/* Make the worker's writer allocate from fn (NULL: back to the batch arena). */
void sl__lh_set_scratch(lh_worker *w, void *(*fn)(void *, size_t), void *ud);

#endif
