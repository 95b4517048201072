/*
 * test_patterns.c - the sandbox's own pattern matching (lua/pattern.c): every case of
 * patterns_diff.lua (hand-written edge cases and 6000 generated ones) gives the same results and
 * errors as Lua's own string library, and the instruction budget bounds a pathological pattern
 * in find, match, gmatch and gsub: the call fails with a clear error instead of spinning.
 */
#include "lt.h"

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

typedef struct lines { char *buf; size_t len, cap; } lines;

static void lines_add(lines *o, const char *line)
{
    size_t n = strlen(line);
    if (o->len + n + 2 > o->cap) {
        o->cap = (o->len + n + 2) * 2;
        o->buf = realloc(o->buf, o->cap);
        assert_non_null(o->buf);
    }
    memcpy(o->buf + o->len, line, n);
    o->len += n;
    o->buf[o->len++] = '\n';
    o->buf[o->len] = '\0';
}

static void print_cb(void *ud, const char *line) { lines_add(ud, line); }

static int ref_print(lua_State *L)
{
    lines_add(lua_touserdata(L, lua_upvalueindex(1)), luaL_checkstring(L, 1));
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* Both outputs, line by line: the first differences are shown with their case. */
static void test_same_as_lua(void **st)
{
    size_t len;
    const char *src = slurp(SLUICE_PATTERNS_DIFF, &len);
    lines ref = {0}, ours = {0};

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushlightuserdata(L, &ref);
    lua_pushcclosure(L, ref_print, 1);
    lua_setglobal(L, "print");
    if (luaL_loadbuffer(L, src, len, "@patterns_diff.lua") != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK)
        fail_msg("reference run: %s", lua_tostring(L, -1));
    lua_close(L);

    sl_lua_opts o = { .instruction_budget = (uint64_t)1 << 40, .memory_limit = 256u << 20,
                      .print = print_cb, .print_ud = &ours };
    sl_lua *s;
    sl_error err = {0};
    assert_int_equal(sl_lua_new(&o, &s, &err), 0);
    if (sl_lua_load(s, src, len, "patterns_diff.lua", &err) < 0)
        fail_msg("sandbox run: %s", err.msg);
    sl_lua_free(s);

    int ncases = 0, bad = 0;
    char *a = ref.buf, *b = ours.buf;
    while (a && *a) {
        char *ea = strchr(a, '\n'), *eb = b ? strchr(b, '\n') : NULL;
        *ea = '\0';
        if (eb)
            *eb = '\0';
        if (!b || !eb || strcmp(a, b) != 0) {
            if (++bad <= 10)
                print_message("differs:\n  lua:     %.600s\n  sandbox: %.600s\n", a, b && eb ? b : "(none)");
        }
        ncases++;
        a = ea + 1;
        b = eb ? eb + 1 : NULL;
    }
    assert_true(b == NULL || *b == '\0');   /* no extra lines from the sandbox */
    print_message("%d cases, %d differ\n", ncases - 1, bad);
    assert_true(ncases > 6000);
    assert_int_equal(bad, 0);
    free(ref.buf);
    free(ours.buf);
}

/* One call of on_row in a fresh state with the default budget: its rc, err set. */
static int call_once(const char *src, sl_error *err)
{
    int entry;
    sl_lua *s = lt_state(src, "on_row", &entry, NULL);
    lt_mem m = {0};
    sl_lua_writer w = lt_writer(&m);
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "db", .table = "t" };
    memset(err, 0, sizeof *err);
    int rc = sl_lua_call(s, entry, &ev, &w, err);
    sl_lua_free(s);
    lt_free(&m);
    return rc;
}

/* Patterns that backtrack for hours inside one call of Lua's string library: each fails with
 * the budget's error at the line of the call, naming the function. */
static void test_pathological_patterns_bounded(void **st)
{
    static const struct { const char *line, *fname; } cases[] = {
        /* docs/lua.md's example: 28 unbounded items that cannot match */
        { "return string.find(('a'):rep(28), ('a*'):rep(28) .. 'b')", "string.find" },
        { "return ('a'):rep(40):match(('.-'):rep(20) .. 'b')", "string.match" },
        { "return (string.gsub(('a'):rep(40), ('.-'):rep(20) .. 'b', 'x'))", "string.gsub" },
        { "for w in ('a'):rep(40):gmatch(('a*'):rep(20) .. 'b') do end", "string.gmatch" },
        /* a function replacement of gsub that matches: the budget covers both */
        { "return (string.gsub('xy', '%w', function(c) return ('a'):rep(30):find(('a-'):rep(15) .. 'b') end))",
          "string.find" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char src[512], want[256];
        snprintf(src, sizeof src, "function on_row(ev)\n  %s\nend", cases[i].line);
        snprintf(want, sizeof want, "t.lua:2: %s: pattern too complex: instruction budget of 1000000 "
                 "exceeded in on_row", cases[i].fname);
        sl_error err;
        int rc = call_once(src, &err);
        if (rc != SL_ELIMIT || strcmp(err.msg, want) != 0)
            fail_msg("%s: rc %d, '%s'; expected '%s'", cases[i].line, rc, err.msg, want);
    }
    /* the brief's example, which Lua itself answers quickly: no error, no match */
    sl_error err;
    assert_int_equal(call_once("function on_row(ev)\n"
                               "  assert(string.find(string.rep('a', 40) .. 'b', '(.-)*(.-)*(.-)*(.-)*(.-)*c') == nil)\n"
                               "end", &err), 0);
}

/* A script that catches the budget's error with pcall cannot go on; the next call has a fresh
 * budget again. */
static void test_pattern_budget_not_caught(void **st)
{
    int entry;
    sl_lua *s = lt_state("n = 0\n"
                         "function on_row(ev)\n"
                         "  n = n + 1\n"
                         "  if n == 1 then\n"
                         "    local ok = pcall(string.find, ('a'):rep(28), ('a*'):rep(28) .. 'b')\n"
                         "    caught = true\n"
                         "  end\n"
                         "  return ('a'):rep(20):find(('a-'):rep(3) .. 'b') == nil\n"
                         "end", "on_row", &entry, NULL);
    lt_mem m = {0};
    sl_lua_writer w = lt_writer(&m);
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "db", .table = "t" };
    sl_error err = {0};
    assert_int_equal(sl_lua_call(s, entry, &ev, &w, &err), SL_ELIMIT);
    assert_string_equal(err.msg, "t.lua:6: instruction budget of 1000000 exceeded in on_row");
    assert_int_equal(sl_lua_call(s, entry, &ev, &w, &err), 0);
    sl_lua_free(s);
    lt_free(&m);
}

/* The offline check (sluice check-task, POST /tasks) runs a script's top level under the budget. */
static void test_check_bounded(void **st)
{
    const char *src = "local x = ('a'):rep(28):find(('a*'):rep(28) .. 'b')\nfunction on_row(ev) end";
    const char *const e[] = { "on_row", NULL };
    sl_error err = {0};
    assert_int_equal(sl_lua_check(src, strlen(src), "p.lua", e, &err), SL_ELIMIT);
    assert_string_equal(err.msg, "p.lua:1: string.find: pattern too complex: instruction budget of "
                        "1000000 exceeded in the script's top level");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_lua),
        cmocka_unit_test(test_pathological_patterns_bounded),
        cmocka_unit_test(test_pattern_budget_not_caught),
        cmocka_unit_test(test_check_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
