/*
 * values.c - column values seen from Lua: plain integers, floats and strings where Lua has an
 * exact equivalent, and typed values (userdata with __tostring) for everything else (DECIMAL,
 * temporal, BIT, binary, JSON, ENUM/SET, geometry, unsigned beyond int64), which convert back to
 * the very same sl_value. Also the `sluice` library that builds typed values from scripts.
 */
#include "lua_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TVAL_MT "sluice.value"

/* A typed value owns a copy of its payload: a script may keep it past the event's batch. */
typedef struct tval {
    sl_value v;
    char     data[];
} tval;

static const char *const type_names[SL_V__COUNT] = {
    "null", "int", "uint", "float", "double", "decimal", "date", "time", "datetime",
    "timestamp", "year", "string", "binary", "json", "bit", "enum", "set", "geometry",
};

static const char *vtype_name(int t) { return t >= 0 && t < SL_V__COUNT ? type_names[t] : "?"; }

/* Payload of a value that has one (pointer and length), else NULL. */
static const char *payload(const sl_value *v, size_t *len)
{
    switch (v->type) {
    case SL_V_DECIMAL: case SL_V_STRING: case SL_V_BINARY: case SL_V_JSON: case SL_V_GEOMETRY:
        *len = v->len;
        return v->v.s ? v->v.s : "";
    case SL_V_ENUM: case SL_V_SET:
        *len = v->v.e.s ? v->len : 0;
        return v->v.e.s;
    default:
        *len = 0;
        return NULL;
    }
}

static void set_payload(sl_value *v, const char *p)
{
    if (v->type == SL_V_ENUM || v->type == SL_V_SET)
        v->v.e.s = p;
    else
        v->v.s = p;
}

static tval *push_tval(lua_State *L, const sl_value *v)
{
    size_t len;
    const char *p = payload(v, &len);
    tval *t = lua_newuserdatauv(L, sizeof *t + len + 1, 0);
    t->v = *v;
    if (p) {
        memcpy(t->data, p, len);
        t->data[len] = '\0';
        set_payload(&t->v, t->data);
    }
    luaL_setmetatable(L, TVAL_MT);
    return t;
}

void sl__lua_push_value(lua_State *L, const sl_value *v)
{
    switch (v->type) {
    case SL_V_NULL:
        lua_pushnil(L);
        break;
    case SL_V_INT:
    case SL_V_YEAR:
        lua_pushinteger(L, (lua_Integer)v->v.i);
        break;
    case SL_V_UINT:
        if (v->v.u <= (uint64_t)INT64_MAX)
            lua_pushinteger(L, (lua_Integer)v->v.u);
        else
            push_tval(L, v);
        break;
    case SL_V_FLOAT:
        lua_pushnumber(L, (lua_Number)v->v.f);
        break;
    case SL_V_DOUBLE:
        lua_pushnumber(L, (lua_Number)v->v.d);
        break;
    case SL_V_STRING:
        lua_pushlstring(L, v->v.s ? v->v.s : "", v->len);
        break;
    default:
        push_tval(L, v);
        break;
    }
}

/* ---- text of typed values --------------------------------------------------------------------- */

static int frac(char *buf, size_t n, uint32_t usec, int dec)
{
    if (dec <= 0 && usec == 0)
        return 0;
    if (dec <= 0 || dec > 6)
        dec = 6;
    uint32_t div = 1;
    for (int i = dec; i < 6; i++)
        div *= 10;
    return snprintf(buf, n, ".%0*u", dec, usec / div);
}

/* Text of a fixed-size typed value (the MySQL literal without quotes). */
static void fixed_text(const sl_value *v, char *buf, size_t n)
{
    const sl_temporal *t = &v->v.t;
    int k;
    switch (v->type) {
    case SL_V_UINT:
    case SL_V_BIT:
        snprintf(buf, n, "%" PRIu64, v->v.u);
        break;
    case SL_V_DATE:
        snprintf(buf, n, "%04d-%02u-%02u", (int)t->year, t->month, t->day);
        break;
    case SL_V_TIME:
        k = snprintf(buf, n, "%s%02u:%02u:%02u", t->neg ? "-" : "", t->hour, t->minute, t->second);
        frac(buf + k, n - (size_t)k, t->usec, v->dec);
        break;
    case SL_V_DATETIME:
        k = snprintf(buf, n, "%04d-%02u-%02u %02u:%02u:%02u", (int)t->year, t->month, t->day,
                     t->hour, t->minute, t->second);
        frac(buf + k, n - (size_t)k, t->usec, v->dec);
        break;
    case SL_V_TIMESTAMP: {
        if (v->v.ts.sec == 0 && v->v.ts.usec == 0) {
            k = snprintf(buf, n, "0000-00-00 00:00:00");
        } else {
            time_t sec = (time_t)v->v.ts.sec;
            struct tm tm;
            gmtime_r(&sec, &tm);
            k = snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        }
        frac(buf + k, n - (size_t)k, v->v.ts.usec, v->dec);
        break;
    }
    case SL_V_ENUM:
    case SL_V_SET:
        snprintf(buf, n, "%" PRIu64, v->v.e.u);
        break;
    default:
        snprintf(buf, n, "%s", vtype_name(v->type));
        break;
    }
}

static tval *check_tval(lua_State *L, int idx) { return luaL_checkudata(L, idx, TVAL_MT); }

static void push_text(lua_State *L, const sl_value *v)
{
    size_t len;
    const char *p = payload(v, &len);
    if (p) {
        lua_pushlstring(L, p, len);
    } else {
        char buf[64];
        fixed_text(v, buf, sizeof buf);
        lua_pushstring(L, buf);
    }
}

static int tval_tostring(lua_State *L)
{
    push_text(L, &check_tval(L, 1)->v);
    return 1;
}

static int tval_len(lua_State *L)
{
    size_t len;
    tval *t = check_tval(L, 1);
    if (payload(&t->v, &len)) {
        lua_pushinteger(L, (lua_Integer)len);
    } else {
        char buf[64];
        fixed_text(&t->v, buf, sizeof buf);
        lua_pushinteger(L, (lua_Integer)strlen(buf));
    }
    return 1;
}

static int tval_concat(lua_State *L)
{
    for (int i = 1; i <= 2; i++) {
        tval *t = luaL_testudata(L, i, TVAL_MT);
        if (t)
            push_text(L, &t->v);
        else if (lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER)
            lua_pushvalue(L, i), lua_tostring(L, -1);
        else
            return luaL_error(L, "attempt to concatenate a %s value", luaL_typename(L, i));
    }
    lua_concat(L, 2);
    return 1;
}

static int same_value(const sl_value *a, const sl_value *b)
{
    size_t la, lb;
    if (a->type != b->type)
        return 0;
    const char *pa = payload(a, &la), *pb = payload(b, &lb);
    if (a->type == SL_V_ENUM || a->type == SL_V_SET)
        return a->v.e.u == b->v.e.u;
    if (pa || pb)
        return pa && pb && la == lb && memcmp(pa, pb, la) == 0;
    switch (a->type) {
    case SL_V_UINT: return a->v.u == b->v.u;
    case SL_V_BIT: return a->v.u == b->v.u && a->bits == b->bits;
    case SL_V_TIMESTAMP: return a->v.ts.sec == b->v.ts.sec && a->v.ts.usec == b->v.ts.usec;
    default: {
        const sl_temporal *x = &a->v.t, *y = &b->v.t;
        return x->year == y->year && x->month == y->month && x->day == y->day &&
               x->hour == y->hour && x->minute == y->minute && x->second == y->second &&
               x->usec == y->usec && x->neg == y->neg;
    }
    }
}

static int tval_eq(lua_State *L)
{
    tval *a = luaL_testudata(L, 1, TVAL_MT), *b = luaL_testudata(L, 2, TVAL_MT);
    lua_pushboolean(L, a && b && same_value(&a->v, &b->v));
    return 1;
}

static int tval_index(lua_State *L)
{
    tval *t = check_tval(L, 1);
    const char *k = luaL_checkstring(L, 2);
    const sl_value *v = &t->v;
    const sl_temporal *tm = &v->v.t;

    if (strcmp(k, "type") == 0) {
        lua_pushstring(L, vtype_name(v->type));
        return 1;
    }
    switch (v->type) {
    case SL_V_DATE: case SL_V_TIME: case SL_V_DATETIME:
        if (strcmp(k, "year") == 0) lua_pushinteger(L, tm->year);
        else if (strcmp(k, "month") == 0) lua_pushinteger(L, tm->month);
        else if (strcmp(k, "day") == 0) lua_pushinteger(L, tm->day);
        else if (strcmp(k, "hour") == 0) lua_pushinteger(L, tm->hour);
        else if (strcmp(k, "minute") == 0) lua_pushinteger(L, tm->minute);
        else if (strcmp(k, "second") == 0) lua_pushinteger(L, tm->second);
        else if (strcmp(k, "usec") == 0) lua_pushinteger(L, tm->usec);
        else if (strcmp(k, "neg") == 0) lua_pushboolean(L, tm->neg);
        else lua_pushnil(L);
        return 1;
    case SL_V_TIMESTAMP:
        if (strcmp(k, "sec") == 0) lua_pushinteger(L, v->v.ts.sec);
        else if (strcmp(k, "usec") == 0) lua_pushinteger(L, v->v.ts.usec);
        else lua_pushnil(L);
        return 1;
    case SL_V_BIT:
        if (strcmp(k, "value") == 0) lua_pushinteger(L, (lua_Integer)v->v.u);
        else if (strcmp(k, "bits") == 0) lua_pushinteger(L, v->bits);
        else lua_pushnil(L);
        return 1;
    case SL_V_ENUM: case SL_V_SET:
        if (strcmp(k, "value") == 0) lua_pushinteger(L, (lua_Integer)v->v.e.u);
        else if (strcmp(k, "label") == 0 && v->v.e.s) lua_pushlstring(L, v->v.e.s, v->len);
        else lua_pushnil(L);
        return 1;
    case SL_V_DECIMAL:
        if (strcmp(k, "scale") == 0) lua_pushinteger(L, v->dec);
        else lua_pushnil(L);
        return 1;
    default:
        lua_pushnil(L);
        return 1;
    }
}

/* ---- the sluice library ----------------------------------------------------------------------- */

/* Length of the DECIMAL literal [+-]digits[.digits] and its scale; -1 if s is not one. */
static int decimal_scale(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    int scale = -1;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    for (; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            digits++;
            if (scale >= 0)
                scale++;
        } else if (s[i] == '.' && scale < 0) {
            scale = 0;
        } else {
            return -1;
        }
    }
    return digits ? (scale < 0 ? 0 : scale) : -1;
}

static int lib_payload(lua_State *L, int type)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    sl_value v = sl_value_str((sl_vtype)type, s, (uint32_t)len, type == SL_V_JSON ? 46 : 63);
    if (len > UINT32_MAX)
        return luaL_error(L, "value too long");
    if (type == SL_V_DECIMAL) {
        int sc = decimal_scale(s, len);
        if (sc < 0 || sc > 255)
            return luaL_error(L, "'%s' is not a decimal number", s);
        v.dec = (uint8_t)sc;
        v.charset = 0;
    }
    push_tval(L, &v);
    return 1;
}

static int lib_decimal(lua_State *L) { return lib_payload(L, SL_V_DECIMAL); }
static int lib_binary(lua_State *L) { return lib_payload(L, SL_V_BINARY); }
static int lib_json(lua_State *L) { return lib_payload(L, SL_V_JSON); }

/* sluice.type(v): the typed value's type name, else Lua's type name. */
static int lib_type(lua_State *L)
{
    tval *t = luaL_testudata(L, 1, TVAL_MT);
    luaL_checkany(L, 1);
    lua_pushstring(L, t ? vtype_name(t->v.type) : luaL_typename(L, 1));
    return 1;
}

void sl__lua_values_open(lua_State *L)
{
    static const luaL_Reg mt[] = {
        { "__tostring", tval_tostring }, { "__len", tval_len }, { "__concat", tval_concat },
        { "__eq", tval_eq }, { "__index", tval_index }, { NULL, NULL },
    };
    static const luaL_Reg lib[] = {
        { "decimal", lib_decimal }, { "binary", lib_binary }, { "json", lib_json },
        { "type", lib_type }, { NULL, NULL },
    };
    luaL_newmetatable(L, TVAL_MT);
    luaL_setfuncs(L, mt, 0);
    lua_pushliteral(L, "sluice.value");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");   /* getmetatable() shows nothing to change */
    lua_pop(L, 1);
    luaL_newlib(L, lib);
    lua_setglobal(L, "sluice");
}

/* ---- Lua -> sl_value ---------------------------------------------------------------------------- */

static char *wdup(lua_State *L, const sl_lua_writer *w, const char *s, size_t len)
{
    char *p = w->alloc(w->ud, len + 1);
    if (!p)
        luaL_error(L, "out of memory");
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void col_error(lua_State *L, const char *col, const char *fmt, const char *what)
{
    luaL_where(L, 1);
    lua_pushfstring(L, "column '%s': ", col ? col : "?");
    lua_pushfstring(L, fmt, what);
    lua_concat(L, 3);
    lua_error(L);
}

static void from_integer(lua_Integer i, int kind, const sl_value *like, const sl_lua_writer *w,
                         lua_State *L, sl_value *out)
{
    char buf[32];
    switch (kind) {
    case SL_V_UINT:
        *out = i >= 0 ? sl_value_uint((uint64_t)i) : sl_value_int(i);
        break;
    case SL_V_BIT:
        *out = sl_value_uint((uint64_t)i);
        out->type = SL_V_BIT;
        out->bits = like->bits ? like->bits : 64;
        break;
    case SL_V_YEAR:
        *out = sl_value_int(i);
        out->type = SL_V_YEAR;
        break;
    case SL_V_FLOAT:
        out->type = SL_V_FLOAT;
        out->v.f = (float)i;
        break;
    case SL_V_DOUBLE:
        *out = sl_value_double((double)i);
        break;
    case SL_V_DECIMAL:
        snprintf(buf, sizeof buf, "%lld", (long long)i);
        *out = sl_value_str(SL_V_DECIMAL, wdup(L, w, buf, strlen(buf)), (uint32_t)strlen(buf), 0);
        break;
    default:
        *out = sl_value_int(i);
        break;
    }
}

void sl__lua_to_value(lua_State *L, int idx, const sl_value *model,
                      const sl_lua_writer *w, sl_value *out, const char *colname)
{
    /* The conversion table is documented in docs/lua.md ("Assigning values"). */
    int kind = model->type;
    uint16_t charset = model->charset;
    memset(out, 0, sizeof *out);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        out->type = SL_V_NULL;
        return;
    case LUA_TBOOLEAN:
        from_integer(lua_toboolean(L, idx), kind, model, w, L, out);
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            from_integer(lua_tointeger(L, idx), kind, model, w, L, out);
            return;
        } else {
            double d = lua_tonumber(L, idx);
            lua_Integer i;
            if ((kind == SL_V_INT || kind == SL_V_UINT || kind == SL_V_YEAR || kind == SL_V_BIT) &&
                lua_numbertointeger(d, &i) && (double)i == d) {
                from_integer(i, kind, model, w, L, out);
                return;
            }
            if (kind == SL_V_FLOAT) {
                out->type = SL_V_FLOAT;
                out->v.f = (float)d;
                return;
            }
            if (kind == SL_V_DECIMAL) {
                char buf[40];
                snprintf(buf, sizeof buf, "%.15g", d);
                if (strtod(buf, NULL) != d)
                    snprintf(buf, sizeof buf, "%.17g", d);
                int sc = decimal_scale(buf, strlen(buf));
                if (sc < 0)
                    col_error(L, colname, "%s is not a decimal number", buf);
                *out = sl_value_str(SL_V_DECIMAL, wdup(L, w, buf, strlen(buf)), (uint32_t)strlen(buf), 0);
                out->dec = (uint8_t)sc;
                return;
            }
            *out = sl_value_double(d);
            return;
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > UINT32_MAX)
            col_error(L, colname, "%s", "value too long");
        switch (kind) {
        case SL_V_BINARY:
        case SL_V_GEOMETRY:
            *out = sl_value_str((sl_vtype)kind, wdup(L, w, s, len), (uint32_t)len, 63);
            return;
        case SL_V_JSON:
            *out = sl_value_str(SL_V_JSON, wdup(L, w, s, len), (uint32_t)len, charset ? charset : 46);
            return;
        case SL_V_DECIMAL: {
            int sc = decimal_scale(s, len);
            if (sc < 0 || sc > 255)
                col_error(L, colname, "'%s' is not a decimal number", s);
            *out = sl_value_str(SL_V_DECIMAL, wdup(L, w, s, len), (uint32_t)len, 0);
            out->dec = (uint8_t)sc;
            return;
        }
        default:
            if (charset == 63) {
                *out = sl_value_str(SL_V_BINARY, wdup(L, w, s, len), (uint32_t)len, 63);
                return;
            }
            /* utf8mb4_general_ci (45) when the column's own charset is unknown */
            *out = sl_value_str(SL_V_STRING, wdup(L, w, s, len), (uint32_t)len, charset ? charset : 45);
            return;
        }
    }
    case LUA_TUSERDATA: {
        tval *t = luaL_testudata(L, idx, TVAL_MT);
        if (t) {
            size_t len;
            const char *p = payload(&t->v, &len);
            *out = t->v;
            if (p)
                set_payload(out, wdup(L, w, p, len));
            return;
        }
    }
    /* fall through */
    default:
        col_error(L, colname, "cannot store a %s value", luaL_typename(L, idx));
    }
}
