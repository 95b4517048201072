/*
 * bind.c - events seen from Lua. A script's entry function gets `ev`, a proxy whose fields are
 * read from the sl_event only when indexed; ev.before / ev.after are row proxies that convert one
 * column per access. Assignments go to copy-on-write images in the writer's memory and reach the
 * event only when the call succeeds, so a failing script leaves the event untouched.
 */
#include "lua_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EV_MT  "sluice.event"
#define ROW_MT "sluice.row"

typedef struct evud { uint32_t gen; } evud;
typedef struct rowud { uint32_t gen; int image; } rowud;

/* Raise "file:line: message" at the script line that made the access (level 1: the Lua function
 * that triggered the metamethod; level 0 is the metamethod itself). */
static int raise(lua_State *L, const char *fmt, const char *a, const char *b)
{
    luaL_where(L, 1);
    lua_pushfstring(L, fmt, a, b);
    lua_concat(L, 2);
    return lua_error(L);
}

static sl__lua_call *live(lua_State *L, uint32_t gen)
{
    sl_lua *s = sl__lua_of(L);
    if (!s->call || gen != s->gen)
        raise(L, "%s%s", "the event is only valid during the call that received it", "");
    return s->call;
}

static const char *kind_name(int k)
{
    switch (k) {
    case SL_EV_INSERT: return "insert";
    case SL_EV_UPDATE: return "update";
    case SL_EV_DELETE: return "delete";
    case SL_EV_DDL: return "ddl";
    case SL_EV_BEGIN: return "begin";
    case SL_EV_COMMIT: return "commit";
    case SL_EV_HEARTBEAT: return "heartbeat";
    case SL_EV_CHUNK: return "chunk";
    default: return "unknown";
    }
}

/* ---- columns ------------------------------------------------------------------------------------ */

static uint32_t ncols_of(const sl_event *ev)
{
    if (!ev->meta)
        return 0;
    return ev->meta->ncols < ev->ncols ? ev->meta->ncols : ev->ncols;
}

/* Column index by name: exact first, then case-insensitive (MySQL column names are). -1 if none. */
static int col_index(const sl_event *ev, const char *name)
{
    uint32_t n = ncols_of(ev);
    for (uint32_t i = 0; i < n; i++)
        if (ev->meta->cols[i].name && strcmp(ev->meta->cols[i].name, name) == 0)
            return (int)i;
    for (uint32_t i = 0; i < n; i++)
        if (ev->meta->cols[i].name && strcasecmp(ev->meta->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const sl_value *image_of(const sl__lua_call *c, int image)
{
    if (c->img[image])
        return c->img[image];
    return image ? c->ev->after : c->ev->before;
}

/* The kind of value a column holds, from its metadata (MySQL enum_field_types). */
static void model_from_column(const sl_column *col, sl_value *m)
{
    memset(m, 0, sizeof *m);
    m->charset = col->charset;
    m->dec = col->scale;
    int bin = col->charset == 63 || (col->flags & SL_COL_BINARY);
    switch (col->mysql_type) {
    case 0: case 246: m->type = SL_V_DECIMAL; break;
    case 1: case 2: case 3: case 8: case 9:
        m->type = (col->flags & SL_COL_UNSIGNED) ? SL_V_UINT : SL_V_INT;
        break;
    case 4: m->type = SL_V_FLOAT; break;
    case 5: m->type = SL_V_DOUBLE; break;
    case 7: case 17: m->type = SL_V_TIMESTAMP; break;
    case 10: case 14: m->type = SL_V_DATE; break;
    case 11: case 19: m->type = SL_V_TIME; break;
    case 12: case 18: m->type = SL_V_DATETIME; break;
    case 13: m->type = SL_V_YEAR; break;
    case 16: m->type = SL_V_BIT; m->bits = (uint8_t)(col->length ? col->length : 64); break;
    case 245: m->type = SL_V_JSON; break;
    case 247: m->type = SL_V_ENUM; break;
    case 248: m->type = SL_V_SET; break;
    case 255: m->type = SL_V_GEOMETRY; break;
    case 15: case 249: case 250: case 251: case 252: case 253: case 254:
        m->type = bin ? SL_V_BINARY : SL_V_STRING;
        break;
    default: m->type = SL_V_NULL; break;
    }
}

/* A value of column i that shows its kind: this image's, the other image's, else the metadata. */
static void column_model(const sl__lua_call *c, int image, int i, sl_value *m)
{
    const sl_value *a = image_of(c, image), *b = image_of(c, !image);
    if (a && a[i].type != SL_V_NULL)
        *m = a[i];
    else if (b && b[i].type != SL_V_NULL)
        *m = b[i];
    else
        model_from_column(&c->ev->meta->cols[i], m);
}

static sl__lua_extra *find_extra(sl__lua_call *c, int image, const char *name)
{
    for (uint32_t j = 0; j < c->nextra; j++)
        if (c->extra[j].image == image && strcasecmp(c->extra[j].name, name) == 0)
            return &c->extra[j];
    return NULL;
}

/* ---- row proxies ----------------------------------------------------------------------------------- */

static int row_index(lua_State *L)
{
    rowud *r = luaL_checkudata(L, 1, ROW_MT);
    sl__lua_call *c = live(L, r->gen);
    if (lua_type(L, 2) != LUA_TSTRING) {
        lua_pushnil(L);
        return 1;
    }
    const char *name = lua_tostring(L, 2);
    int i = col_index(c->ev, name);
    if (i >= 0) {
        sl__lua_push_value(L, &image_of(c, r->image)[i]);
        return 1;
    }
    sl__lua_extra *x = find_extra(c, r->image, name);
    if (x)
        sl__lua_push_value(L, &x->val);
    else
        lua_pushnil(L);
    return 1;
}

static void *walloc(lua_State *L, sl__lua_call *c, size_t n)
{
    void *p = c->w->alloc(c->w->ud, n);
    if (!p)
        luaL_error(L, "out of memory");
    return p;
}

static int row_newindex(lua_State *L)
{
    rowud *r = luaL_checkudata(L, 1, ROW_MT);
    sl__lua_call *c = live(L, r->gen);
    if (lua_type(L, 2) != LUA_TSTRING)
        return raise(L, "%s%s", "column names are strings", "");
    const char *name = lua_tostring(L, 2);
    int i = col_index(c->ev, name);
    sl_value m;
    if (i >= 0) {
        column_model(c, r->image, i, &m);
        if (!c->img[r->image]) {
            uint32_t n = c->ev->ncols;
            sl_value *cp = walloc(L, c, (size_t)n * sizeof *cp);
            memcpy(cp, image_of(c, r->image), (size_t)n * sizeof *cp);
            c->img[r->image] = cp;
        }
        sl__lua_to_value(L, 3, &m, c->w, &c->img[r->image][i], c->ev->meta->cols[i].name);
        return 0;
    }
    /* A column the table does not have: kept aside, appended on success (docs/lua.md). */
    sl__lua_extra *x = find_extra(c, r->image, name);
    if (!x) {
        if (c->nextra == c->capextra) {
            uint32_t cap = c->capextra ? c->capextra * 2 : 4;
            sl__lua_extra *nx = realloc(c->extra, cap * sizeof *nx);
            if (!nx)
                return luaL_error(L, "out of memory");
            c->extra = nx;
            c->capextra = cap;
        }
        x = &c->extra[c->nextra];
        size_t len = strlen(name);
        char *nm = walloc(L, c, len + 1);
        memcpy(nm, name, len + 1);
        x->name = nm;
        x->image = r->image;
        x->val = sl_value_null();
        c->nextra++;
    }
    memset(&m, 0, sizeof m);
    m.type = x->val.type;      /* a second assignment keeps the first one's kind */
    m.charset = x->val.charset;
    sl__lua_to_value(L, 3, &m, c->w, &x->val, x->name);
    return 0;
}

/* Iterator for pairs(row): columns in table order, then derived columns. Upvalue 1: position. */
static int row_next(lua_State *L)
{
    rowud *r = luaL_checkudata(L, 1, ROW_MT);
    sl__lua_call *c = live(L, r->gen);
    lua_Integer pos = lua_tointeger(L, lua_upvalueindex(1));
    uint32_t n = ncols_of(c->ev);
    for (;;) {
        if ((uint64_t)pos < n) {
            lua_pushinteger(L, pos + 1);
            lua_replace(L, lua_upvalueindex(1));
            lua_pushstring(L, c->ev->meta->cols[pos].name ? c->ev->meta->cols[pos].name : "");
            sl__lua_push_value(L, &image_of(c, r->image)[pos]);
            return 2;
        }
        uint64_t j = (uint64_t)pos - n;
        if (j >= c->nextra)
            return 0;
        pos++;
        if (c->extra[j].image == r->image) {
            lua_pushinteger(L, pos);
            lua_replace(L, lua_upvalueindex(1));
            lua_pushstring(L, c->extra[j].name);
            sl__lua_push_value(L, &c->extra[j].val);
            return 2;
        }
    }
}

static int row_pairs(lua_State *L)
{
    rowud *r = luaL_checkudata(L, 1, ROW_MT);
    live(L, r->gen);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, row_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int row_len(lua_State *L)
{
    rowud *r = luaL_checkudata(L, 1, ROW_MT);
    sl__lua_call *c = live(L, r->gen);
    lua_pushinteger(L, ncols_of(c->ev));
    return 1;
}

/* ---- event proxies ----------------------------------------------------------------------------------- */

static void push_str(lua_State *L, const char *s)
{
    if (s)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
}

static void push_row(lua_State *L, sl__lua_call *c, int image)
{
    const sl_value *v = image ? c->ev->after : c->ev->before;
    if (!v) {
        lua_pushnil(L);
        return;
    }
    int uv = image + 1;
    if (lua_getiuservalue(L, 1, uv) == LUA_TUSERDATA)
        return;
    lua_pop(L, 1);
    rowud *r = lua_newuserdatauv(L, sizeof *r, 0);
    r->gen = sl__lua_of(L)->gen;
    r->image = image;
    luaL_setmetatable(L, ROW_MT);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, uv);
}

/* The source session's modes a DDL's text reads in (sl_event.ddl_mode), as sql_mode words;
 * "" for none. */
static void push_mode(lua_State *L, const sl_event *ev)
{
    char words[SL_DDLM_TEXT_MAX];
    sl_ddl_mode_text(ev->kind == SL_EV_DDL ? ev->ddl_mode : 0, words, sizeof words);
    lua_pushstring(L, words);
}

static int ev_index(lua_State *L)
{
    evud *e = luaL_checkudata(L, 1, EV_MT);
    sl__lua_call *c = live(L, e->gen);
    const sl_event *ev = c->ev;
    const char *k = luaL_checkstring(L, 2);

    if (strcmp(k, "type") == 0) lua_pushstring(L, kind_name(c->new_kind ? c->new_kind : ev->kind));
    else if (strcmp(k, "schema") == 0) push_str(L, ev->schema);
    else if (strcmp(k, "table") == 0) push_str(L, ev->table);
    else if (strcmp(k, "after") == 0) push_row(L, c, 1);
    else if (strcmp(k, "before") == 0) push_row(L, c, 0);
    else if (strcmp(k, "target_schema") == 0)
        push_str(L, c->set_target_schema ? c->target_schema : ev->target_schema ? ev->target_schema : ev->schema);
    else if (strcmp(k, "target_table") == 0)
        push_str(L, c->set_target_table ? c->target_table : ev->target_table ? ev->target_table : ev->table);
    else if (strcmp(k, "ddl") == 0) push_str(L, c->set_ddl ? c->ddl : ev->ddl);
    else if (strcmp(k, "ddl_schema") == 0) push_str(L, ev->ddl_schema);
    else if (strcmp(k, "sql_mode") == 0) push_mode(L, ev);
    else if (strcmp(k, "commit_ts") == 0) lua_pushinteger(L, (lua_Integer)ev->commit_ts);
    else if (strcmp(k, "gtid") == 0) push_str(L, ev->pos.gtid);
    else if (strcmp(k, "binlog_file") == 0) push_str(L, ev->pos.file);
    else if (strcmp(k, "binlog_pos") == 0) lua_pushinteger(L, (lua_Integer)ev->pos.offset);
    else if (strcmp(k, "snapshot") == 0) lua_pushboolean(L, (ev->flags & SL_EVF_SNAPSHOT) != 0);
    else lua_pushnil(L);
    return 1;
}

static const char *wstr(lua_State *L, sl__lua_call *c, int idx, const char *field)
{
    size_t len;
    if (lua_type(L, idx) != LUA_TSTRING)
        raise(L, "ev.%s must be a string, not a %s", field, luaL_typename(L, idx));
    const char *s = lua_tolstring(L, idx, &len);
    if (len == 0 || strlen(s) != len)
        raise(L, "ev.%s must be a non-empty string without NUL bytes%s", field, "");
    char *p = walloc(L, c, len + 1);
    memcpy(p, s, len + 1);
    return p;
}

static int ev_newindex(lua_State *L)
{
    evud *e = luaL_checkudata(L, 1, EV_MT);
    sl__lua_call *c = live(L, e->gen);
    const char *k = luaL_checkstring(L, 2);

    if (strcmp(k, "target_schema") == 0) {
        c->target_schema = wstr(L, c, 3, k);
        c->set_target_schema = 1;
    } else if (strcmp(k, "target_table") == 0) {
        c->target_table = wstr(L, c, 3, k);
        c->set_target_table = 1;
    } else if (strcmp(k, "type") == 0) {
        /* An update may become a delete of its before image (e.g. a soft delete) or an insert
         * of its after image; nothing else changes kind. */
        const char *v = lua_tostring(L, 3);
        int from = c->ev->kind;
        if (v && strcmp(v, kind_name(from)) == 0)
            c->new_kind = 0;
        else if (v && from == SL_EV_UPDATE && strcmp(v, "delete") == 0)
            c->new_kind = SL_EV_DELETE;
        else if (v && from == SL_EV_UPDATE && strcmp(v, "insert") == 0)
            c->new_kind = SL_EV_INSERT;
        else
            raise(L, "ev.type of a%s event cannot become '%s' (only an update can become an insert or a delete)",
                  from == SL_EV_UPDATE ? "n update" : from == SL_EV_INSERT ? "n insert" : " delete", v ? v : "?");
    } else if (strcmp(k, "ddl") == 0 && c->ev->kind == SL_EV_DDL) {
        c->ddl = wstr(L, c, 3, k);
        c->set_ddl = 1;
    } else if (strcmp(k, "before") == 0 || strcmp(k, "after") == 0) {
        raise(L, "ev.%s cannot be replaced: assign its columns (ev.%s.name = value)", k, k);
    } else {
        raise(L, "ev.%s is read-only%s", k, "");
    }
    return 0;
}

static int ev_tostring(lua_State *L)
{
    evud *e = luaL_checkudata(L, 1, EV_MT);
    sl__lua_call *c = live(L, e->gen);
    lua_pushfstring(L, "event %s %s.%s", kind_name(c->ev->kind), c->ev->schema ? c->ev->schema : "",
                    c->ev->table ? c->ev->table : "");
    return 1;
}

void sl__lua_bind_open(lua_State *L)
{
    static const luaL_Reg evm[] = {
        { "__index", ev_index }, { "__newindex", ev_newindex }, { "__tostring", ev_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg rowm[] = {
        { "__index", row_index }, { "__newindex", row_newindex }, { "__pairs", row_pairs },
        { "__len", row_len }, { NULL, NULL },
    };
    luaL_newmetatable(L, EV_MT);
    luaL_setfuncs(L, evm, 0);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    luaL_newmetatable(L, ROW_MT);
    luaL_setfuncs(L, rowm, 0);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

/* ---- calling a script --------------------------------------------------------------------------------- */

/* Protected: [ref] -> calls the entry with a fresh event proxy; leaves 0 (keep) or 1 (drop). */
static int call_entry(lua_State *L)
{
    sl_lua *s = sl__lua_of(L);
    lua_Integer ref = lua_tointeger(L, 1);
    sl__lua_use_script(L, s->call->script);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    evud *e = lua_newuserdatauv(L, sizeof *e, 2);
    e->gen = s->gen;
    luaL_setmetatable(L, EV_MT);
    lua_pushvalue(L, -1);
    lua_insert(L, 2);                /* [ref ev fn ev] */
    int evidx = 2;
    lua_call(L, 1, 1);
    switch (lua_type(L, -1)) {
    case LUA_TNIL:
        lua_pushinteger(L, 0);
        return 1;
    case LUA_TBOOLEAN:
        lua_pushinteger(L, lua_toboolean(L, -1) ? 0 : 1);
        return 1;
    default:
        if (lua_rawequal(L, -1, evidx)) {
            lua_pushinteger(L, 0);
            return 1;
        }
        return luaL_error(L, "%s returned a %s; expected true (keep), false (drop), nil or the event",
                          s->fn, luaL_typename(L, -1));
    }
}

/* Apply derived columns: new metadata from the writer, images widened to hold them. */
static int apply_extras(sl__lua_call *c, sl_error *err)
{
    sl_event *ev = c->ev;
    const sl_lua_writer *w = c->w;
    uint32_t n = 0;
    const char **names = calloc(c->nextra, sizeof *names);
    sl_value *vals = calloc(c->nextra, sizeof *vals);
    int rc = 0;

    if (!names || !vals) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    /* distinct names, in order of first assignment; model value = after's if any */
    for (uint32_t j = 0; j < c->nextra; j++) {
        uint32_t k = 0;
        while (k < n && strcasecmp(names[k], c->extra[j].name) != 0)
            k++;
        if (k == n) {
            names[n] = c->extra[j].name;
            vals[n++] = c->extra[j].val;
        } else if (c->extra[j].image == 1 || vals[k].type == SL_V_NULL) {
            vals[k] = c->extra[j].val;
        }
    }
    sl_table *t = w->extend ? w->extend(w->ud, ev, ev->meta, names, vals, n) : NULL;
    if (!t) {
        rc = sl_error_set(err, SL_ELUA, "%s: column '%s' does not exist in %s.%s (a script may only "
                          "assign columns of the table)", c->fn, names[0], ev->schema ? ev->schema : "",
                          ev->table ? ev->table : "");
        goto out;
    }
    uint32_t base = ev->ncols;
    sl_value *img[2] = { NULL, NULL };
    for (int im = 0; im < 2; im++) {
        const sl_value *cur = image_of(c, im);
        if (!cur)
            continue;
        img[im] = w->alloc(w->ud, (size_t)(base + n) * sizeof(sl_value));
        if (!img[im]) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(img[im], cur, (size_t)base * sizeof(sl_value));
        for (uint32_t k = 0; k < n; k++) {
            sl__lua_extra *x = find_extra(c, im, names[k]);
            img[im][base + k] = x ? x->val : sl_value_null();
        }
    }
    c->img[0] = img[0];
    c->img[1] = img[1];
    ev->meta = t;
    ev->ncols = base + n;
out:
    free(names);
    free(vals);
    return rc;
}

int sl_lua_call(sl_lua *s, int entry, sl_event *ev, const sl_lua_writer *w, sl_error *err)
{
    lua_State *L = s->L;
    int ref = sl__lua_entry_ref(s, entry);
    const char *fn = entry >= 0 && entry < s->nentries ? s->entries[entry].name : "?";
    if (ref == LUA_NOREF || !ev || !w || !w->alloc)
        return sl_error_set(err, SL_EINVAL, "bad Lua entry or event");

    sl__lua_call c;
    memset(&c, 0, sizeof c);
    c.ev = ev;
    c.w = w;
    c.fn = fn;
    c.script = s->entries[entry].script;
    s->call = &c;
    s->gen++;
    lua_pushcfunction(L, call_entry);
    lua_pushinteger(L, ref);
    int rc = sl__lua_pcall(s, 1, 1, fn, err);
    s->call = NULL;
    s->gen++;                       /* proxies kept by the script are dead from now on */
    if (rc == 0) {
        rc = lua_tointeger(L, -1) ? SL_DROP : 0;
        lua_pop(L, 1);
    }
    if (rc == 0 && c.nextra)
        rc = apply_extras(&c, err);
    if (rc == 0) {
        if (c.img[0])
            ev->before = c.img[0];
        if (c.img[1])
            ev->after = c.img[1];
        if (c.set_target_schema)
            ev->target_schema = c.target_schema;
        if (c.set_target_table)
            ev->target_table = c.target_table;
        if (c.set_ddl)
            ev->ddl = c.ddl;
        if (c.new_kind == SL_EV_DELETE) {
            ev->kind = SL_EV_DELETE;
            ev->after = NULL;
        } else if (c.new_kind == SL_EV_INSERT) {
            ev->kind = SL_EV_INSERT;
            ev->before = NULL;
        }
    }
    free(c.extra);
    return rc;
}
