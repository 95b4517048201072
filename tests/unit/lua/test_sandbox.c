/*
 * test_sandbox.c - the Lua sandbox: escapes refused (io, os, require, dofile, binary chunks via
 * load and string.dump), the memory cap, the instruction budget (also when a script catches the
 * error), sl_lua_check's messages, the state staying usable after a limit was hit, and scripts of
 * one state that cannot change the libraries for each other.
 */
#include "lt.h"

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static int check(const char *src, const char *const *entries, sl_error *err)
{
    memset(err, 0, sizeof *err);
    return sl_lua_check(src, strlen(src), "scripts/t.lua", entries, err);
}

static void test_check_ok_and_syntax(void **st)
{
    sl_error err;
    const char *const e[] = { "on_row", "", "on_ddl", NULL };
    assert_int_equal(check("function on_row(ev) return true end\nfunction on_ddl(ev) end", e, &err), 0);
    assert_int_equal(check("function on_row(ev)\n  retur true\nend", e, &err), SL_ELUA);
    assert_string_equal(err.msg, "scripts/t.lua:2: syntax error near 'true'");
    assert_int_equal(err.code, SL_ELUA);
}

static void test_check_entries(void **st)
{
    sl_error err;
    const char *const e[] = { "on_row", NULL };
    assert_int_equal(check("x = 1", e, &err), SL_ELUA);
    assert_string_equal(err.msg, "scripts/t.lua: entry function 'on_row' is not defined");
    assert_int_equal(check("on_row = 5", e, &err), SL_ELUA);
    assert_string_equal(err.msg, "scripts/t.lua: entry function 'on_row' is a number, not a function");
    /* a global of the sandbox is not the script's entry */
    const char *const p[] = { "print", NULL };
    assert_int_equal(check("x = 1", p, &err), SL_ELUA);
    /* runtime error at top level: file:line */
    assert_int_equal(check("local a = nil\nlocal b = a.x", NULL, &err), SL_ELUA);
    assert_non_null(strstr(err.msg, "scripts/t.lua:2:"));
    /* an endless top level */
    assert_int_equal(check("while true do end", NULL, &err), SL_ELIMIT);
    assert_non_null(strstr(err.msg, "instruction budget of 1000000 exceeded"));
}

/* Each escape must fail with an error at the line that tried it. */
static void test_escapes_refused(void **st)
{
    static const char *const bad[] = {
        "io.open('/etc/passwd')",
        "os.execute('true')",
        "require('os')",
        "dofile('/etc/passwd')",
        "loadfile('/etc/passwd')",
        "package.loadlib('x', 'y')",
        "debug.getregistry()",
        "string.dump(function() end)",
        "load('return 1', 'x', 'b')",
        "load('return 1', 'x', 'bt')",
        "collectgarbage('stop')",
        "setmetatable({}, {__gc = function() end})",
        "warn('x')",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_error err;
        int rc = check(bad[i], NULL, &err);
        if (rc != SL_ELUA)
            fail_msg("'%s' was allowed (rc %d, %s)", bad[i], rc, err.msg);
        assert_non_null(strstr(err.msg, "scripts/t.lua:1:"));
    }
    sl_error err;
    /* text load and the allowed collectgarbage options still work */
    assert_int_equal(check("assert(load('return 1 + 1')() == 2)\nassert(collectgarbage('count') > 0)\n"
                           "assert(io == nil and os == nil and package == nil and debug == nil)",
                           NULL, &err), 0);
}

typedef struct cbuf { char data[4096]; size_t len; } cbuf;

static int write_buf(lua_State *L, const void *p, size_t sz, void *ud)
{
    cbuf *b = ud;
    if (b->len + sz > sizeof b->data)
        return 1;
    memcpy(b->data + b->len, p, sz);
    b->len += sz;
    return 0;
}

/* A real precompiled chunk, made by a plain Lua state, is refused both as a script and by load(). */
static void test_bytecode_refused(void **st)
{
    lua_State *L = luaL_newstate();
    assert_int_equal(luaL_loadstring(L, "function on_row(ev) return false end"), 0);
    static cbuf b;
    assert_int_equal(lua_dump(L, write_buf, &b, 0), 0);
    size_t len = b.len;
    const char *bc = b.data;
    assert_true(len > 4 && bc[0] == '\x1b');
    const char *const e[] = { "on_row", NULL };

    sl_error err = {0};
    assert_int_equal(sl_lua_check(bc, len, "bc.lua", e, &err), SL_ELUA);
    assert_non_null(strstr(err.msg, "binary"));

    /* the same bytes as a string literal given to load() inside the sandbox */
    luaL_Buffer src;
    luaL_buffinit(L, &src);
    luaL_addstring(&src, "local f, e = load(\"");
    for (size_t i = 0; i < len; i++) {
        char esc[8];
        snprintf(esc, sizeof esc, "\\%03u", (unsigned char)bc[i]);
        luaL_addstring(&src, esc);
    }
    luaL_addstring(&src, "\")\nassert(f == nil, 'bytecode was loaded')\nassert(e:find('binary'), e)\n"
                         "function on_row(ev) return true end");
    luaL_pushresult(&src);
    const char *s = lua_tostring(L, -1);
    if (sl_lua_check(s, strlen(s), "bc2.lua", e, &err) != 0)
        fail_msg("%s", err.msg);
    lua_close(L);
}

static void test_memory_cap(void **st)
{
    sl_lua_opts o = { .instruction_budget = 1000000000u, .memory_limit = 4u << 20 };
    sl_lua *s;
    sl_error err = {0};
    assert_int_equal(sl_lua_new(&o, &s, &err), 0);
    const char *src = "t = {}\nfor i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end";
    assert_int_equal(sl_lua_load(s, src, strlen(src), "mem.lua", &err), SL_ELIMIT);
    assert_non_null(strstr(err.msg, "memory limit of 4194304 bytes exceeded"));
    assert_true(sl_lua_memory(s) <= o.memory_limit);
    /* the state recovers once the script lets go of its garbage */
    const char *ok = "t = nil\ncollectgarbage()\nfunction on_row(ev) return true end";
    assert_true(sl_lua_load(s, ok, strlen(ok), "ok.lua", &err) >= 0);
    sl_lua_free(s);
}

static void test_budget_in_call(void **st)
{
    sl_lua_opts o = { .instruction_budget = 5000 };
    int entry;
    sl_lua *s = lt_state("n = 0\n"
                         "function on_row(ev)\n"
                         "  n = n + 1\n"
                         "  if n == 1 then while true do end end\n"
                         "  if n == 2 then\n"
                         "    while true do pcall(function() while true do end end) end\n"
                         "  end\n"
                         "  return true\n"
                         "end", "on_row", &entry, &o);
    lt_mem m = {0};
    sl_lua_writer w = lt_writer(&m);
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "db", .table = "t" };
    sl_error err = {0};
    assert_int_equal(sl_lua_call(s, entry, &ev, &w, &err), SL_ELIMIT);
    assert_string_equal(err.msg, "t.lua:4: instruction budget of 5000 exceeded in on_row");
    /* a script that catches the budget error still cannot go on */
    assert_int_equal(sl_lua_call(s, entry, &ev, &w, &err), SL_ELIMIT);
    assert_non_null(strstr(err.msg, "instruction budget of 5000 exceeded in on_row"));
    /* and the next call has a fresh budget */
    assert_int_equal(sl_lua_call(s, entry, &ev, &w, &err), 0);
    sl_lua_free(s);
    lt_free(&m);
}

static void test_print_discarded(void **st)
{
    sl_error err;
    /* no host callback: print is discarded (it never writes to the server's stdout) */
    assert_int_equal(check("print('hello', 1, nil)", NULL, &err), 0);
}

static void print_cb(void *ud, const char *line) { snprintf(ud, 128, "%s", line); }

static void test_print_callback(void **st)
{
    char got[128] = "";
    sl_lua_opts o = { .print = print_cb, .print_ud = got };
    sl_lua *s;
    sl_error err = {0};
    assert_int_equal(sl_lua_new(&o, &s, &err), 0);
    const char *src = "print('hello', 1, nil, true)";
    assert_true(sl_lua_load(s, src, strlen(src), "p.lua", &err) >= 0);
    assert_string_equal(got, "hello\t1\tnil\ttrue");
    sl_lua_free(s);
}

static void long_cb(void *ud, const char *line) { *(size_t *)ud = strlen(line); }

/* A line longer than the buffer's stack space (LUAL_BUFFERSIZE): print read freed memory (ASan
 * heap-use-after-free) once the buffer grew. */
static void test_print_long_line(void **st)
{
    size_t got = 0;
    sl_lua_opts o = { .print = long_cb, .print_ud = &got };
    sl_lua *s;
    sl_error err = {0};
    assert_int_equal(sl_lua_new(&o, &s, &err), 0);
    const char *src = "print(('x'):rep(1100), ('y'):rep(100000), 42)";
    assert_true(sl_lua_load(s, src, strlen(src), "p.lua", &err) >= 0);
    assert_int_equal(got, 1100 + 1 + 100000 + 1 + 2);
    sl_lua_free(s);
}

static void test_scripts_have_own_globals(void **st)
{
    sl_lua *s;
    sl_error err = {0};
    assert_int_equal(sl_lua_new(NULL, &s, &err), 0);
    const char *a = "function on_row(ev) return true end";
    const char *b = "function on_row(ev) return false end";
    int ia = sl_lua_load(s, a, strlen(a), "a.lua", &err), ib = sl_lua_load(s, b, strlen(b), "b.lua", &err);
    assert_int_equal(ia, 0);
    assert_int_equal(ib, 1);
    int ea = sl_lua_entry(s, ia, "on_row", &err), eb = sl_lua_entry(s, ib, "on_row", &err);
    assert_true(ea >= 0 && eb >= 0 && ea != eb);
    assert_int_equal(sl_lua_entry(s, ia, "on_row", &err), ea);
    assert_int_equal(sl_lua_entry(s, ia, "nope", &err), SL_ENOENT);
    lt_mem m = {0};
    sl_lua_writer w = lt_writer(&m);
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "db", .table = "t" };
    assert_int_equal(sl_lua_call(s, ea, &ev, &w, &err), 0);
    assert_int_equal(sl_lua_call(s, eb, &ev, &w, &err), SL_DROP);
    sl_lua_free(s);
    lt_free(&m);
}

/* Script A changes the libraries every way a script can reach them; script B, loaded in the
 * same state, and script C, loaded after both, still see the originals. They shared the library
 * tables (through their environments' __index): A's string.upper was everyone's. */
static const char *const CHANGER =
    "string.upper = function() return 'A' end\n"
    "table.insert = function() error('A') end\n"
    "math.floor = function() return -1 end\n"
    "utf8.char = nil\n"
    "sluice.type = nil\n"
    "function string.shout(s) return s:upper() .. '!' end\n"
    "_G.via_G = true\n"
    "load('string.rep = nil; via_load = true')()\n"
    "getmetatable('').__index = { lower = function() return 'A' end }\n"
    "getmetatable('').__add = function() return 'A' end\n"
    "function on_row(ev)\n"
    "  assert(('x'):upper() == 'A' and ('x'):shout() == 'A!', 'own methods')\n"
    "  assert(string.rep == nil and via_G and via_load and _G == _ENV, 'own globals')\n"
    "  assert(('x'):lower() == 'x' and ('1') + 1 == 2, 'the string metatable is not changed')\n"
    "  return true\n"
    "end\n";
static const char *const USER =
    "function on_row(ev)\n"
    "  assert(string.upper('x') == 'X', 'string.upper')\n"
    "  assert(('x'):upper() == 'X' and ('x').shout == nil, 'string methods')\n"
    "  local t = {}\n"
    "  table.insert(t, 1)\n"
    "  assert(t[1] == 1, 'table.insert')\n"
    "  assert(math.floor(1.5) == 1, 'math.floor')\n"
    "  assert(utf8.char(65) == 'A' and sluice.type(1) == 'number', 'utf8, sluice')\n"
    "  assert(string.rep('a', 2) == 'aa' and string.shout == nil, 'string')\n"
    "  assert(via_G == nil and via_load == nil, 'globals')\n"
    "  assert(getmetatable('').__index == string and ('1') + 1 == 2, 'the string metatable')\n"
    "  return true\n"
    "end\n";

static void test_scripts_have_own_libraries(void **st)
{
    sl_lua *s;
    sl_error err = {0};
    assert_int_equal(sl_lua_new(NULL, &s, &err), 0);
    int ids[3];
    const char *src[3] = { CHANGER, USER, USER };
    const char *names[3] = { "a.lua", "b.lua", "c.lua" };
    int entries[3];
    for (int i = 0; i < 3; i++) {
        if ((ids[i] = sl_lua_load(s, src[i], strlen(src[i]), names[i], &err)) < 0)
            fail_msg("load %s: %s", names[i], err.msg);
        if ((entries[i] = sl_lua_entry(s, ids[i], "on_row", &err)) < 0)
            fail_msg("entry %s: %s", names[i], err.msg);
    }
    lt_mem m = {0};
    sl_lua_writer w = lt_writer(&m);
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "db", .table = "t" };
    static const int order[] = { 0, 1, 0, 2, 1, 1, 0 };   /* switching scripts back and forth */
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (sl_lua_call(s, entries[order[i]], &ev, &w, &err) != 0)
            fail_msg("call %zu (%s): %s", i, names[order[i]], err.msg);
    sl_lua_free(s);
    lt_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_ok_and_syntax),
        cmocka_unit_test(test_check_entries),
        cmocka_unit_test(test_escapes_refused),
        cmocka_unit_test(test_bytecode_refused),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_budget_in_call),
        cmocka_unit_test(test_print_discarded),
        cmocka_unit_test(test_print_long_line),
        cmocka_unit_test(test_print_callback),
        cmocka_unit_test(test_scripts_have_own_globals),
        cmocka_unit_test(test_scripts_have_own_libraries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
