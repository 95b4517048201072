-- patterns_diff.lua - the differential test of the sandbox's pattern matching (lua/pattern.c),
-- run by test_patterns.c twice: in a plain Lua state (the reference: Lua's own string library)
-- and as a script of the sandbox. It prints one line per case (the call, then its results or its
-- error); the test compares the two outputs line by line. Cases: hand-written edge cases, then
-- patterns and subjects drawn from a fixed pseudo-random sequence over a small alphabet.

local function show(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[i] = type(v) .. ":" .. (type(v) == "string" and string.format("%q", v) or tostring(v))
  end
  return table.concat(out, " ")
end

local function try(f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then return "error: " .. tostring(r[2]) end
  return show(table.unpack(r, 2, r.n))
end

local function run(fn, s, p, a3, a4)
  if fn ~= "gmatch" then return try(string[fn], s, p, a3, a4) end
  local ok, it = pcall(string.gmatch, s, p, a3)
  if not ok then return "error: " .. tostring(it) end
  local out = {}
  for _ = 1, 40 do
    local r = table.pack(pcall(it))
    if not r[1] then out[#out + 1] = "error: " .. tostring(r[2]); break end
    if r.n == 1 then out[#out + 1] = "done " .. show(it()); break end   -- and stays done
    out[#out + 1] = show(table.unpack(r, 2, r.n))
  end
  return table.concat(out, " ; ")
end

-- gsub replacements other than strings
local tbl = { a = "A", b = false, ab = 12, [""] = "<empty>", c = {}, ["1"] = 1.5 }
local function fcaps(...) return select("#", ...) .. "[" .. table.concat({ ... }, "|") .. "]" end
local function fsome(x) if x == "a" then return nil elseif x == "b" then return false end return x .. x end
local function fbad(x) if x == "c" then return true end return 1 end
-- matches with other patterns while gsub and gmatch are half-way through theirs
local function fnest(x)
  local hits = 0
  for i = 1, 40 do
    local p = "^[%a]" .. string.rep("%d?", i % 5) .. string.rep("x?", i // 5) .. "$"
    if string.find(x .. i, p) then hits = hits + 1 end
  end
  return x .. hits
end
local empty, ver = {}, { name = "lua", version = "5.4" }
local shown = { [tbl] = "tbl", [fcaps] = "fcaps", [fsome] = "fsome", [fbad] = "fbad", [empty] = "{}",
                [ver] = "ver", [fnest] = "fnest" }

-- Each case runs twice: the sandbox keeps recently compiled patterns, the second run uses them.
local n = 0
local function case(fn, s, p, a3, a4)
  n = n + 1
  local function arg(v) return shown[v] or show(v) end
  local first, again = run(fn, s, p, a3, a4), run(fn, s, p, a3, a4)
  print(n .. " " .. fn .. "(" .. arg(s) .. ", " .. arg(p) .. ", " .. arg(a3) .. ", " .. arg(a4) ..
        ") -> " .. first .. (again == first and "" or " | again -> " .. again))
end

local rep = string.rep

-- ---- hand-written cases ------------------------------------------------------------------------

-- the manual's examples
case("gsub", "hello world", "(%w+)", "%1 %1")
case("gsub", "hello world", "%w+", "%0 %0", 1)
case("gsub", "hello world from Lua", "(%w+)%s*(%w+)", "%2 %1")
case("gsub", "$name-$version.tar.gz", "%$(%w+)", ver)
case("gsub", "4+5 = $return 4+5$", "%$(.-)%$", fcaps)
case("gmatch", "hello world from Lua", "%a+")
case("gmatch", "from=world, to=Lua", "(%w+)=(%w+)")
case("find", "THE (quick) fox", "%f[%a]%a+")
case("gsub", "THE (quick) fox", "%f[%a]%a+", "W")
case("gsub", "THE (quick) fox", "%f[%a]", "|")
case("gsub", "THE (quick) fox", "%f[%A]", "|")
case("match", "  key = value  ", "^%s*(%S+)%s*=%s*(%S+)%s*$")
case("match", "x = [[a]] y", "%b[]")
case("match", "((a) b", "%b()")
case("match", '"a"b"', '%b""')
case("gsub", "f(a(b)c) g(d)", "%b()", "")
case("match", "hello", "()ll()")
case("find", "hello", "l+")
case("match", "  trim me  ", "^%s*(.-)%s*$")
case("match", "user@example.com", "^([^@]+)@(.+)$")
case("match", "2024-02-29", "^(%d%d%d%d)-(%d%d)-(%d%d)$")
case("gsub", "a,b,,c", ",", ";")
case("match", "key=val", "(%w+)=(%w+)")
case("match", "abcabc", "(abc)%1")
case("match", "abcabd", "(abc)%1")
case("match", "xyzxyz", "(.)(.)(.)%1%2%3")
case("match", "a1", "()%1")          -- a position back-reference never matches
case("match", "aa", "(a)%1*")        -- '*' after %1 is a plain character
-- 5.4's empty-match rules
case("gsub", "abc", "", "-")
case("gsub", "abc", "b*", "-")
case("gsub", "", "", "-")
case("gsub", "abc", "x*", "-")
case("gsub", "abc", "%w*", "-")
case("gmatch", "abc", "b*")
case("gmatch", "abc", "")
case("gmatch", "", "")
case("gmatch", "a,b,,c", "([^,]*)")
-- gmatch's init (5.4) and its '^' (a plain character there)
case("gmatch", "abcabc", "b", 3)
case("gmatch", "abcabc", "b", -2)
case("gmatch", "abc", "", 4)
case("gmatch", "abc", "", 5)
case("gmatch", "abc", ".", -100)
case("gmatch", "^a^a", "^a")
case("gmatch", "aaa", "^a")
-- find and match: init, plain
case("find", "abc", "", 10)
case("find", "abc", "", 4)
case("find", "abc", "", 5)
case("find", "abc", "", -10)
case("find", "abc", "b", -1)
case("find", "abc", "b", -2)
case("find", "abc", "b", 0)
case("match", "abc", ".", 4)
case("match", "abc", "()", 4)
case("match", "abc", ".", 5)
case("find", "a.b", ".", 1, true)
case("find", "a+b", "+", 1, true)
case("find", "a+b", "a+", 1, true)
case("find", "a+b", "a+", 1, false)
case("find", "a+b", "", 2, true)
case("find", rep("ab", 100) .. "x", rep("ab", 20) .. "x")          -- plain, longer than 16
case("find", rep("ab", 100) .. "x", rep("ab", 20) .. "y")
case("find", "a.b" .. rep("c", 30), "." .. rep("c", 20), 1, true)
case("find", "a.b" .. rep("c", 30), "." .. rep("c", 20), -25, true)
case("find", rep("a", 40), rep("a", 16) .. "b")
case("find", rep("a", 40), rep("a", 16), 30)
case("find", rep("a", 40), rep("a", 16), 26)
case("find", rep("a", 40), rep("a", 16), 25)
case("find", "a)b", "a)")
case("match", "a)b", "a)")
case("find", "a]b", "]")
case("find", "a\0b", "\0")
case("find", "a\0b", "%z")
case("match", "a\0b", "[\0]")
case("match", "a\0b", ".%z?.")
case("find", 12345, 34)
case("match", 3.5, "%.")
case("gsub", 123, "x", "y")
case("gsub", 123, "2", 9)
case("find", "^abc", "^a")
case("find", "abc", "^a", 2)
case("find", "abc", "c$")
case("find", "abc$", "c$")
case("find", "a$c", "$c")
case("find", "a$c", "a$*")
case("match", "*a", "*a")
case("match", "+a", "+?a")
case("match", "a-b", "a-b")
case("match", "ab", "a--b")
-- sets
case("match", "]", "[]]")
case("match", "a]", "[^]]")
case("match", "-", "[a-]")
case("match", "-", "[-a]")
case("match", "b", "[a-c-e]")
case("match", "-", "[a-c-e]")
case("match", "%", "[%%]")
case("match", "]", "[%]]")
case("match", "x", "[%a-z]")
case("match", "-", "[%a-z]")
case("match", "5", "[^%D]")
case("match", "a", "[]")
case("match", "a", "[^]")
case("match", "a", "[a")
case("match", "a", "[a%")
case("match", "a", "[%")
case("match", "a", "[%]")
case("match", "a", "%")
case("match", "b", "a%")            -- never reached: no error
case("match", "a", "a%")
case("match", "a", "%q")
case("match", "Q", "%Q")
-- every class and its complement, over every byte
for _, cl in ipairs({ "a", "c", "d", "g", "l", "p", "s", "u", "w", "x" }) do
  local all = {}
  for b = 0, 255 do all[#all + 1] = string.char(b) end
  all = table.concat(all)
  case("gsub", all, "%" .. cl, "")
  case("gsub", all, "%" .. cl:upper(), "")
  case("gsub", all, "[%" .. cl .. "_]", "")
  case("gsub", all, "[^%" .. cl .. "]", "")
  case("gsub", all, "%f[%" .. cl .. "]", "!")
end
-- %b and %f edge cases
case("match", "a", "%b")
case("match", "a", "%ba")
case("match", "a", "%bab")
case("match", "", "%b()")
case("match", "(", "%b()")
case("match", "(()", "%b()")
case("match", "x", "%f")
case("match", "x", "%fx")
case("match", "x", "%f[")
case("match", "x", "%f[x")
case("match", "x", "%f[x]")
case("match", "ax", "%f[x]")
case("match", "x", "x%f[%z]")
case("match", "x y", "%f[%s]")
-- captures
case("match", "abc", "a)")
case("match", "abc", "(a")
case("find", "abc", "(a")
case("gmatch", "abc", "(a")
case("gsub", "abc", "(a", "x")
case("gsub", "abc", "(a", "%1")
case("gsub", "abc", "(a", tbl)
case("gsub", "abc", "(a", fcaps)
case("match", "abc", "(a)(b)%3")
case("match", "abc", "(a%1)")
case("match", "abc", "%0")
case("match", "abc", "%1")
case("match", "abc", "()%1")
case("match", "abc", "(()a)")
case("match", "abc", "((a)(b))")
case("match", rep("a", 40), rep("(a)", 32))
case("match", rep("a", 40), rep("(a)", 33))
case("match", rep("a", 40), rep("()", 32))
case("match", rep("a", 40), rep("()", 33))
case("match", "b", rep("()", 33) .. "a")
case("find", rep("a", 40), rep("(a)", 32))
-- the depth at which Lua refuses a pattern as too complex
case("find", rep("a", 300), rep("a?", 199))
case("find", rep("a", 300), rep("a?", 200))
case("find", rep("a", 300), rep("a*", 200))
case("find", rep("a", 300), rep("a-", 199) .. "$")
case("find", rep("a", 300), rep("a-", 200) .. "$")
case("find", rep("ab", 300), rep("a+b", 199))
case("find", rep("ab", 300), rep("a+b", 200))
case("find", rep("a", 300), rep("()", 30) .. rep("a?", 169))
case("find", rep("a", 300), rep("()", 30) .. rep("a?", 170))
case("find", rep("a", 300), rep("(a)", 30) .. rep("a?", 139))
case("find", rep("a", 300), rep("(a)", 30) .. rep("a?", 140))
case("find", rep("a", 300), rep("(a)", 30) .. rep("a?", 200))
case("find", rep("b", 300), rep("a?", 300))
-- long patterns (more items than the matcher keeps on the C stack)
case("match", rep("ab", 100), rep("ab", 100))
case("match", rep("ab", 100), rep("a.", 99) .. "b")
case("match", rep("ab", 100), rep("a%w", 99) .. "c")
case("gsub", rep("ab", 100), rep("[ab]", 40), "x")
case("gmatch", rep("ab", 100), rep("[ab]", 40))
-- gsub: replacements and counts
case("gsub", "abc", "(b)", "%0%1%%")
case("gsub", "abc", "()", "%1")
case("gsub", "abc", "b", "%2")
case("gsub", "abc", "(b)", "%2")
case("gsub", "abc", "b", "%")
case("gsub", "abc", "b", "x%")
case("gsub", "abc", "b", "%x")
case("gsub", "abc", "b", "%1")
case("gsub", "abc", "b", "%0%0")
case("gsub", "abc", "x", "%")           -- no match: the replacement is never read
case("gsub", "abc", ".", "x", 0)
case("gsub", "abc", ".", "x", -1)
case("gsub", "abc", ".", "x", 2)
case("gsub", "abc", ".", "x", 1.5)
case("gsub", "abc", ".", "x", "z")
case("gsub", "abc", ".", "x", "2")
case("gsub", "abc", ".", nil)
case("gsub", "abc", ".", true)
case("gsub", "abc", ".", 7)
case("gsub", "abc", ".", 7.5)
case("gsub", "abc", "%w", tbl)
case("gsub", "abc", "(%w)", tbl)
case("gsub", "ab", "(%w*)", tbl)
case("gsub", "1", "%d", tbl)
case("gsub", "abc", "%w", fcaps)
case("gsub", "abc", "(%w)()", fcaps)
case("gsub", "abc", "%w", fsome)
case("gsub", "abc", "%w", fbad)
case("gsub", "xbx", "b", fsome)
case("gsub", "abc abc", "(%a)(%a)(%a)", "x")      -- compiled, then used while fnest compiles others
case("gsub", "abc abc", "(%a)(%a)(%a)", fnest)
case("gsub", "a1b2c3d4e5f6g7h8i9", "(%a)%d", "x")
case("gsub", "a1b2c3d4e5f6g7h8i9", "(%a)%d", fnest)
case("gsub", "hello world", "^h", "H")
case("gsub", "hello world", "^o", "0")
case("gsub", "hello", "", "-", 2)
case("gsub", "hello", "l*", "-")
case("gsub", "hello", "l-", "-")
case("gsub", "hello", "l?", "-")
-- bad arguments
case("find", nil, "a")
case("find", "a", nil)
case("find", "a", "a", "x")
case("find", "a", "a", 1.5)
case("match", empty, "a")
case("gmatch", "a", nil)
case("gmatch", "a", "a", "x")
case("gsub", "a", empty, "x")

-- ---- generated cases ---------------------------------------------------------------------------

local seed = 20240229
local function rnd(k)   -- a fixed sequence (not math.random, whose generator may change)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return (seed >> 8) % k + 1
end
local function pick(t) return t[rnd(#t)] end

local ptoks = { "a", "a", "b", "b", "c", ".", ".", "%a", "%A", "%d", "%s", "%w", "%W", "%p", "%%",
  "%.", "%]", "[ab]", "[^a]", "[a-c]", "[%a%d]", "[]a]", "[^]a]", "[a-]", "[-a]", "[%-]", "*", "*",
  "+", "+", "-", "-", "?", "?", "(", "(", ")", ")", "()", "%1", "%2", "%0", "%b()", "%bab", "%f[a]",
  "%f[%s]", "%f[^a]", "^", "$", "%", "[", "]", "%b", "%f", "%fa", "x", " ", "\0", "%z", "[a", "%g",
  "%c", "%u", "%l", "%D", "1" }
local schars = { "a", "a", "a", "b", "b", "c", "(", ")", " ", ".", "1", "%", "-", "\0", "x", "A", "]" }
local function subject()
  local t = {}
  for i = 1, rnd(12) - 1 do t[i] = pick(schars) end
  return table.concat(t)
end
local function pattern()
  local t = {}
  for i = 1, rnd(9) - 1 do t[i] = pick(ptoks) end
  return table.concat(t)
end
local inits = { false, false, 1, 2, 3, -1, -2, -3, 0, 6, 12, 13, 100, -100 }
local repls = { "x", "%0", "%1", "[%1%2]", "%%", "%", "%x", "<%0>", "", tbl, fcaps, fsome, 7 }
local maxes = { false, false, false, 0, 1, 2, -1 }
local fns = { "find", "match", "gmatch", "gsub" }
for i = 1, 6000 do
  local fn, s, p = fns[(i - 1) % 4 + 1], subject(), pattern()
  local init = pick(inits) or nil
  if fn == "gsub" then
    case(fn, s, p, pick(repls), pick(maxes) or nil)
  elseif fn == "find" then
    case(fn, s, p, init, rnd(6) == 1)
  else
    case(fn, s, p, init)
  end
end
print("cases " .. n)
