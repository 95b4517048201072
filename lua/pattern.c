/*
 * pattern.c - string.find, string.match, string.gmatch and string.gsub of the sandbox: Lua 5.4's
 * pattern language (reference manual §6.4.1) run by our own matcher, which charges every step to
 * the call's instruction budget. Lua's own functions match inside one C call that the count hook
 * cannot interrupt, so a pattern that backtracks without end (string.rep("a*", 28) .. "b" on 28
 * a's) spun for hours.
 *
 * A pattern is first compiled into items (one per pattern item of the manual; consecutive plain
 * characters form one run), then matched by an explicit backtracking search: a choice point per
 * repetition or optional item on the current path, tried in the order Lua tries them, so every
 * result (captures, the empty-match rules of gsub and gmatch) is the one Lua gives. Lua raises a
 * malformed-pattern error only when the search reaches the bad item; compiling records the error
 * as an item, raised when reached, so "a%" still fails to find "b" without an error.
 */
#include "lua_int.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#define MAXCAPTURES 32     /* LUA_MAXCAPTURES, Lua's default */
#define MAXDEPTH    200    /* Lua refuses deeper nesting of its matcher with "pattern too complex" */
#define SMALL       32     /* items compiled on the C stack; a longer pattern gets a userdata */

/* ---- patterns and their items ---------------------------------------------------------------- */

enum item_kind {
    I_END,          /* the pattern matched */
    I_RUN,          /* plain characters p[off, off + len) */
    I_SINGLE,       /* one character class, maybe repeated (quant) */
    I_OPEN,         /* '(' */
    I_POSITION,     /* '()' */
    I_CLOSE,        /* ')' */
    I_ANCHOR_END,   /* '$' at the pattern's end */
    I_BALANCE,      /* %bxy */
    I_FRONTIER,     /* %f[set] */
    I_BACKREF,      /* %1 .. %9 */
    I_ERROR,        /* a malformed item: the error is raised when the search reaches it */
};
enum quant { Q_ONE, Q_STAR, Q_PLUS, Q_MINUS, Q_OPT };
enum cls { C_ANY, C_CHAR, C_CLASS, C_SET };
enum perr { E_ENDS_PERCENT, E_MISSING_BRACKET, E_BALANCE_ARGS, E_FRONTIER_BRACKET, E_BAD_CLOSE,
            E_TOO_MANY, E_CAPTURE_INDEX };
enum capkind { K_UNFINISHED, K_CLOSED, K_POSITION };

typedef struct pitem {
    uint8_t       kind, quant, cls;
    uint8_t       neg;          /* sets: it starts with '^'; C_CLASS: upper case (%S) */
    uint8_t       cap;          /* capture index (I_OPEN, I_POSITION, I_CLOSE, I_BACKREF) */
    unsigned char ch, ch2;      /* C_CHAR: the char; C_CLASS: the class letter in lower case;
                                   %b's pair; I_ERROR: enum perr (ch), the capture digit (ch2) */
    size_t        off, len;     /* I_RUN: the chars; sets: their members p[off, off + len) */
} pitem;

typedef struct choice {
    size_t item, pos, n;        /* the item, where it started (or where '-' is), chars taken */
    int    depth;               /* Lua's nesting depth to resume with */
} choice;

typedef struct compiled {
    pitem   *items;
    choice  *choices;           /* room for every choice point one path can hold */
    size_t   nitems, nchoices;
    int      ncap;              /* captures at the pattern's end */
    uint8_t  capkind[MAXCAPTURES];
} compiled;

/* ---- character classes ----------------------------------------------------------------------- */

/* A class letter of %x, either case ('z', the NUL of Lua 5.1, is still in Lua's library). */
static int is_class(int cl)
{
    return cl != 0 && memchr("acdglpsuwxz", tolower(cl), 11) != NULL;
}

/* c is in the class of lower-case class letter cl. */
static int in_class(int c, int cl)
{
    switch (cl) {
    case 'a': return isalpha(c) != 0;
    case 'c': return iscntrl(c) != 0;
    case 'd': return isdigit(c) != 0;
    case 'g': return isgraph(c) != 0;
    case 'l': return islower(c) != 0;
    case 'p': return ispunct(c) != 0;
    case 's': return isspace(c) != 0;
    case 'u': return isupper(c) != 0;
    case 'w': return isalnum(c) != 0;
    case 'x': return isxdigit(c) != 0;
    default: return c == 0;   /* 'z' */
    }
}

/* %x: a class letter (upper case: its complement); any other character stands for itself. */
static int class_match(int c, int cl)
{
    if (!is_class(cl))
        return cl == c;
    return in_class(c, tolower(cl)) != (isupper(cl) != 0);
}

/* The members of a set, m[0, len): %x classes, x-y ranges (a '-' first or last is itself), chars. */
static int set_match(int c, const unsigned char *m, size_t len, int neg)
{
    for (size_t k = 0; k < len; k++) {
        if (m[k] == '%') {
            k++;
            if (class_match(c, m[k]))
                return !neg;
        } else if (k + 2 < len && m[k + 1] == '-') {
            if (m[k] <= c && c <= m[k + 2])
                return !neg;
            k += 2;
        } else if (m[k] == c) {
            return !neg;
        }
    }
    return neg;
}

/* ---- compiling ------------------------------------------------------------------------------- */

/* A set "[...]" whose '[' is at p[at]: its members start at *first and end before the closing ']'
 * at the return value, or (size_t)-1 when there is no ']' (an escaped "%]" does not close). */
static size_t set_end(const char *p, size_t lp, size_t at, size_t *first, uint8_t *neg)
{
    size_t k = at + 1;
    *neg = k < lp && p[k] == '^';
    if (*neg)
        k++;
    *first = k;
    do {                        /* the first member may be ']' itself */
        if (k >= lp)
            return (size_t)-1;
        if (p[k++] == '%' && k < lp)
            k++;
    } while (k >= lp || p[k] != ']');
    return k;
}

/* What compile() has so far: the items (written to out[0, cap), past that only counted), the
 * captures opened, the choice points, and where the last run of plain characters ends. */
typedef struct builder {
    pitem   *out;
    size_t   cap, n, nchoices, run_end;
    pitem    spare;
    int      level;
    uint8_t  kind[MAXCAPTURES];
} builder;

/* Appends an item (when there is room) and counts it. */
static pitem *emit(builder *b, uint8_t kind)
{
    pitem *it = b->n < b->cap ? &b->out[b->n] : &b->spare;
    memset(it, 0, sizeof *it);
    it->kind = kind;
    b->n++;
    return it;
}

/* Ends the items with a malformed one; returns 0 (compile() stops). */
static size_t emit_error(builder *b, enum perr e, int digit)
{
    pitem *it = emit(b, I_ERROR);
    it->ch = (unsigned char)e;
    it->ch2 = (unsigned char)digit;
    return 0;
}

/* '(' or '()' at p[i]: returns where the next item starts, or 0 past the captures' limit. */
static size_t open_capture(builder *b, const char *p, size_t lp, size_t i)
{
    if (b->level >= MAXCAPTURES)
        return emit_error(b, E_TOO_MANY, 0);
    int pos = i + 1 < lp && p[i + 1] == ')';
    emit(b, pos ? I_POSITION : I_OPEN)->cap = (uint8_t)b->level;
    b->kind[b->level++] = pos ? K_POSITION : K_UNFINISHED;
    return i + (pos ? 2 : 1);
}

/* ')' at p[i]: closes the innermost capture still open, or 0 when there is none. */
static size_t close_capture(builder *b, size_t i)
{
    int l = b->level - 1;
    while (l >= 0 && b->kind[l] != K_UNFINISHED)
        l--;
    if (l < 0)
        return emit_error(b, E_BAD_CLOSE, 0);
    emit(b, I_CLOSE)->cap = (uint8_t)l;
    b->kind[l] = K_CLOSED;
    return i + 1;
}

/* %b, %f or %0-%9 at p[i] (p[i + 1] says which): where the next item starts, or 0. */
static size_t escape_item(builder *b, const char *p, size_t lp, size_t i)
{
    if (p[i + 1] == 'b') {
        if (i + 3 >= lp)
            return emit_error(b, E_BALANCE_ARGS, 0);
        pitem *it = emit(b, I_BALANCE);
        it->ch = (unsigned char)p[i + 2];
        it->ch2 = (unsigned char)p[i + 3];
        return i + 4;
    }
    if (p[i + 1] == 'f') {
        size_t first, end;
        uint8_t neg;
        if (i + 2 >= lp || p[i + 2] != '[')
            return emit_error(b, E_FRONTIER_BRACKET, 0);
        if ((end = set_end(p, lp, i + 2, &first, &neg)) == (size_t)-1)
            return emit_error(b, E_MISSING_BRACKET, 0);
        pitem *it = emit(b, I_FRONTIER);
        it->neg = neg;
        it->off = first;
        it->len = end - first;
        return end + 1;
    }
    int l = p[i + 1] - '1';   /* a back-reference: to a capture closed (or a position) before */
    if (l < 0 || l >= b->level || b->kind[l] == K_UNFINISHED)
        return emit_error(b, E_CAPTURE_INDEX, l + 1);
    emit(b, I_BACKREF)->cap = (uint8_t)l;
    return i + 2;
}

/* A plain character at p[i] that nothing repeats: one more of the run just before, or a run. */
static size_t plain_char(builder *b, size_t i)
{
    if (b->run_end == i && b->n > 0) {
        if (b->n <= b->cap)
            b->out[b->n - 1].len++;
    } else {
        pitem *it = emit(b, I_RUN);
        it->off = i;
        it->len = 1;
    }
    b->run_end = i + 1;
    return i + 1;
}

/* The single-character class at p[i] (".", "%x", "[set]" or a character) into *one: returns
 * where it ends, or 0 with *bad set when it is malformed. */
static size_t single_item(const char *p, size_t lp, size_t i, pitem *one, enum perr *bad)
{
    memset(one, 0, sizeof *one);
    one->kind = I_SINGLE;
    if (p[i] == '%') {
        if (i + 1 >= lp) {
            *bad = E_ENDS_PERCENT;
            return 0;
        }
        int cl = (unsigned char)p[i + 1];
        if (is_class(cl)) {     /* resolved here: %S is class 's', negated */
            one->cls = C_CLASS;
            one->ch = (unsigned char)tolower(cl);
            one->neg = isupper(cl) != 0;
        } else {                /* any other escaped character stands for itself */
            one->cls = C_CHAR;
            one->ch = (unsigned char)cl;
        }
        return i + 2;
    }
    if (p[i] == '[') {
        size_t first, end = set_end(p, lp, i, &first, &one->neg);
        if (end == (size_t)-1) {
            *bad = E_MISSING_BRACKET;
            return 0;
        }
        one->cls = C_SET;
        one->off = first;
        one->len = end - first;
        return end + 1;
    }
    one->cls = p[i] == '.' ? C_ANY : C_CHAR;
    one->ch = (unsigned char)p[i];
    return i + 1;
}

static uint8_t quant_of(char c)
{
    switch (c) {
    case '*': return Q_STAR;
    case '+': return Q_PLUS;
    case '-': return Q_MINUS;
    case '?': return Q_OPT;
    default: return Q_ONE;
    }
}

/* A single character class at p[i], and what repeats it: where the next item starts, or 0. */
static size_t class_item(builder *b, const char *p, size_t lp, size_t i)
{
    pitem one;
    enum perr bad;
    size_t next = single_item(p, lp, i, &one, &bad);
    if (!next)
        return emit_error(b, bad, 0);
    one.quant = next < lp ? quant_of(p[next]) : Q_ONE;
    if (one.quant != Q_ONE) {
        next++;
        b->nchoices++;
    }
    *emit(b, I_SINGLE) = one;
    return next;
}

/*
 * Compiles p[start, lp) into out (room for cap items). Returns the number of items the pattern
 * needs (compile again with that room if it is more than cap); c gets the choice points and the
 * captures. Never raises: a malformed item becomes I_ERROR and ends the list, as nothing after it
 * can be reached. Which capture a ')' closes, and whether a back-reference is valid, depend only
 * on the items before them, so they are decided here too.
 */
static size_t compile(const char *p, size_t lp, size_t start, pitem *out, size_t cap, compiled *c)
{
    builder b = { .out = out, .cap = cap, .run_end = (size_t)-1 };
    size_t i = start;
    while (i < lp) {   /* each item's function returns where the next starts, 0 after an error */
        char ch = p[i];
        if (ch == '(')
            i = open_capture(&b, p, lp, i);
        else if (ch == ')')
            i = close_capture(&b, i);
        else if (ch == '$' && i + 1 == lp)
            i = (emit(&b, I_ANCHOR_END), i + 1);
        else if (ch == '%' && i + 1 < lp && (p[i + 1] == 'b' || p[i + 1] == 'f' ||
                                             (p[i + 1] >= '0' && p[i + 1] <= '9')))
            i = escape_item(&b, p, lp, i);
        else if (ch != '%' && ch != '[' && ch != '.' && (i + 1 == lp || quant_of(p[i + 1]) == Q_ONE))
            i = plain_char(&b, i);
        else
            i = class_item(&b, p, lp, i);
        if (i == 0)
            break;
    }
    emit(&b, I_END);
    c->nchoices = b.nchoices;
    c->ncap = b.level;
    memcpy(c->capkind, b.kind, (size_t)b.level);
    return b.n;
}

/* ---- the search ------------------------------------------------------------------------------ */

static int single_match(const pitem *it, const unsigned char *p, int c)
{
    switch (it->cls) {
    case C_ANY: return 1;
    case C_CHAR: return it->ch == c;
    case C_CLASS: return in_class(c, it->ch) != it->neg;
    default: return set_match(c, p + it->off, it->len, it->neg);
    }
}

typedef struct mstate {
    lua_State           *L;
    const char          *fname;       /* "string.find", for the budget's message */
    const unsigned char *s, *p;       /* subject and pattern */
    size_t               ls;
    const compiled      *c;
    size_t               cap_start[MAXCAPTURES], cap_end[MAXCAPTURES];
    int64_t              left;        /* steps this call may still take */
    int64_t              granted;     /* left when last refilled from the budget */
} mstate;

static void refill(mstate *m) { m->granted = m->left = sl__lua_steps_left(m->L); }

/* Charge the steps taken since the last refill to the call's budget. */
static void settle(mstate *m)
{
    sl__lua_steps_charge(m->L, (uint64_t)(m->granted - (m->left > 0 ? m->left : 0)));
    m->granted = m->left > 0 ? m->left : 0;
}

static void step(mstate *m, int64_t n)
{
    if ((m->left -= n) < 0) {
        settle(m);
        sl__lua_steps_exceeded(m->L, m->fname);
    }
}

static const char *const ERRORS[] = {
    [E_ENDS_PERCENT] = "malformed pattern (ends with '%%')",
    [E_MISSING_BRACKET] = "malformed pattern (missing ']')",
    [E_BALANCE_ARGS] = "malformed pattern (missing arguments to '%%b')",
    [E_FRONTIER_BRACKET] = "missing '[' after '%%f' in pattern",
    [E_BAD_CLOSE] = "invalid pattern capture",
    [E_TOO_MANY] = "too many captures",
    [E_CAPTURE_INDEX] = "invalid capture index %%%d",
};

static int item_error(mstate *m, const pitem *it)
{
    settle(m);
    return luaL_error(m->L, ERRORS[it->ch], (int)it->ch2);
}

/* Lua nests one more level of its matcher here: refuse past its limit, as it does. */
static int deeper(mstate *m, int depth)
{
    if (depth >= MAXDEPTH) {
        settle(m);
        luaL_error(m->L, "pattern too complex");
    }
    return depth + 1;
}

/* p[pos] matches it (not at the subject's end). */
#define AT(m, it, pos) ((pos) < (m)->ls && single_match((it), (m)->p, (m)->s[pos]))

/* The next alternative of the newest choice point: sets *item and *pos and returns 1, or 0 when
 * none is left. Alternatives come in Lua's order: '*' and '+' give back one character at a time,
 * '-' takes one more, '?' tries without its character. */
static int backtrack(mstate *m, choice *cs, size_t *top, size_t *item, size_t *pos, int *depth)
{
    while (*top > 0) {
        choice *ch = &cs[*top - 1];
        const pitem *it = &m->c->items[ch->item];
        step(m, 1);
        switch (it->quant) {
        case Q_OPT:     /* its other way: without the character */
            (*top)--;
            *pos = ch->pos;
            break;
        case Q_STAR:
        case Q_PLUS:
            if (ch->n == (it->quant == Q_PLUS)) {
                (*top)--;
                continue;
            }
            *pos = ch->pos + --ch->n;
            break;
        default:        /* Q_MINUS */
            if (!AT(m, it, ch->pos)) {
                (*top)--;
                continue;
            }
            *pos = ++ch->pos;
            break;
        }
        *item = ch->item + 1;
        *depth = ch->depth;
        return 1;
    }
    return 0;
}

/* %bxy at pos: the end of the balanced text, or -1. */
static ptrdiff_t balance(mstate *m, const pitem *it, size_t pos)
{
    if (pos >= m->ls || m->s[pos] != it->ch)
        return -1;
    int open = 1;
    for (size_t k = pos + 1; k < m->ls; k++) {
        if (m->s[k] == it->ch2) {       /* before the opening test: %b"" closes at the next " */
            if (--open == 0) {
                step(m, (int64_t)(k - pos));
                return (ptrdiff_t)k + 1;
            }
        } else if (m->s[k] == it->ch) {
            open++;
        }
    }
    step(m, (int64_t)(m->ls - pos));
    return -1;
}

/* An item that matches one way or not at all, at pos: where it ends, or -1. */
static ptrdiff_t one_way(mstate *m, const pitem *it, size_t pos)
{
    switch (it->kind) {
    case I_RUN: {
        size_t k = 0;
        while (k < it->len && pos + k < m->ls && m->s[pos + k] == m->p[it->off + k])
            k++;
        step(m, (int64_t)k);
        return k == it->len ? (ptrdiff_t)(pos + k) : -1;
    }
    case I_ANCHOR_END:
        return pos == m->ls ? (ptrdiff_t)pos : -1;
    case I_BALANCE:
        return balance(m, it, pos);
    case I_FRONTIER: {
        int before = pos > 0 ? m->s[pos - 1] : 0, here = pos < m->ls ? m->s[pos] : 0;
        const unsigned char *set = m->p + it->off;
        return !set_match(before, set, it->len, it->neg) && set_match(here, set, it->len, it->neg)
                   ? (ptrdiff_t)pos : -1;
    }
    case I_BACKREF: {
        if (m->c->capkind[it->cap] == K_POSITION)   /* a position never matches text */
            return -1;
        size_t len = m->cap_end[it->cap] - m->cap_start[it->cap];
        step(m, (int64_t)len);
        return m->ls - pos >= len && memcmp(m->s + m->cap_start[it->cap], m->s + pos, len) == 0
                   ? (ptrdiff_t)(pos + len) : -1;
    }
    case I_SINGLE:   /* Q_ONE */
        return AT(m, it, pos) ? (ptrdiff_t)pos + 1 : -1;
    default:         /* I_ERROR */
        return item_error(m, it);
    }
}

/* A repeated or optional item (number item) at pos: its first way, leaving a choice point for
 * the others; where it ends, or -1. Lua nests its matcher one level deeper for each that took a
 * character, which the depth follows. */
static ptrdiff_t first_way(mstate *m, const pitem *it, size_t item, size_t pos, choice *cs,
                           size_t *top, int *depth)
{
    if (it->quant == Q_STAR || it->quant == Q_PLUS) {   /* as many as there are */
        size_t n = 0;
        while (AT(m, it, pos + n))
            n++;
        step(m, (int64_t)n);
        if (n == 0)
            return it->quant == Q_STAR ? (ptrdiff_t)pos : -1;
        *depth = deeper(m, *depth);
        cs[(*top)++] = (choice){ .item = item, .pos = pos, .n = n, .depth = *depth };
        return (ptrdiff_t)(pos + n);
    }
    if (!AT(m, it, pos))           /* '?' and '-' without the character: no other way */
        return (ptrdiff_t)pos;
    *depth = deeper(m, *depth);
    if (it->quant == Q_OPT) {      /* with the character first; the other way one level up */
        cs[(*top)++] = (choice){ .item = item, .pos = pos, .depth = *depth - 1 };
        return (ptrdiff_t)pos + 1;
    }
    cs[(*top)++] = (choice){ .item = item, .pos = pos, .depth = *depth };   /* '-': none first */
    return (ptrdiff_t)pos;
}

/* Match the compiled pattern at subject offset pos: the end of the match, or -1. */
static ptrdiff_t match_at(mstate *m, size_t pos)
{
    const compiled *c = m->c;
    choice *cs = c->choices;
    size_t item = 0, top = 0;
    int depth = 1;
    for (;;) {
        const pitem *it = &c->items[item];
        ptrdiff_t e = (ptrdiff_t)pos;
        step(m, 1);
        switch (it->kind) {
        case I_END:
            return e;
        case I_OPEN:
        case I_POSITION:
            depth = deeper(m, depth);
            m->cap_start[it->cap] = pos;
            break;
        case I_CLOSE:
            depth = deeper(m, depth);
            m->cap_end[it->cap] = pos;
            break;
        case I_SINGLE:
            e = it->quant == Q_ONE ? one_way(m, it, pos) : first_way(m, it, item, pos, cs, &top, &depth);
            break;
        default:
            e = one_way(m, it, pos);
        }
        if (e >= 0) {
            pos = (size_t)e;
            item++;
        } else if (!backtrack(m, cs, &top, &item, &pos, &depth)) {
            return -1;
        }
    }
}

/* ---- compiled storage ------------------------------------------------------------------------ */

/* Room for a compiled pattern: the caller's small arrays, or a userdata left on the stack (the
 * memory cap counts it; the collector frees it). */
typedef struct room {
    pitem  items[SMALL];
    choice choices[SMALL];
} room;

/* Short patterns compiled lately, per state: a script that calls find with the same pattern
 * on every row compiles it once. Found by the pattern's address (short strings are interned)
 * and checked by its text, as the address may have been reused by another string since. A hit
 * is copied to the caller's room, never used in place. */
#define CACHED      8
#define CACHED_TEXT 48

typedef struct cached {
    size_t   lp, start;            /* lp 0: empty slot (an empty pattern is not worth caching) */
    char     text[CACHED_TEXT];
    compiled c;                    /* its items are the entry's own */
    pitem    items[SMALL];
} cached;

struct sl__lua_patterns { cached slot[CACHED]; };

static cached *cache_slot(lua_State *L, const char *p)
{
    sl__lua_patterns *pc = sl__lua_of(L)->patterns;
    return pc ? &pc->slot[((uintptr_t)p >> 4) % CACHED] : NULL;
}

/* p[start, lp) compiled for one call: into r (from the cache when it was compiled lately), or
 * into a userdata left on the stack when it has more than SMALL items. */
static void compile_into(lua_State *L, const char *p, size_t lp, size_t start, room *r, compiled *c)
{
    cached *e = lp > 0 && lp <= CACHED_TEXT ? cache_slot(L, p) : NULL;
    if (e && e->lp == lp && e->start == start && memcmp(e->text, p, lp) == 0) {
        /* copied out: a table lookup or function of gsub may compile other patterns into this
         * slot while the caller still matches with these items */
        *c = e->c;
        memcpy(r->items, e->items, e->c.nitems * sizeof *r->items);
        c->items = r->items;
        c->choices = r->choices;
        return;
    }
    size_t n = compile(p, lp, start, r->items, SMALL, c);
    c->nitems = n;
    if (n <= SMALL) {
        c->items = r->items;
        c->choices = r->choices;
        if (e) {
            e->lp = lp;
            e->start = start;
            memcpy(e->text, p, lp);
            memcpy(e->items, r->items, n * sizeof *e->items);
            e->c = *c;
            e->c.items = e->items;
        }
    } else {
        c->items = lua_newuserdatauv(L, n * sizeof(pitem) + c->nchoices * sizeof(choice), 0);
        c->choices = (choice *)(c->items + n);
        compile(p, lp, start, c->items, n, c);
    }
}

/* ---- results --------------------------------------------------------------------------------- */

/* Capture l of the match s[from, to) (l = 0 without captures: the whole match). */
static void push_capture(mstate *m, int l, size_t from, size_t to)
{
    const compiled *c = m->c;
    if (l >= c->ncap) {
        if (l != 0) {
            settle(m);
            luaL_error(m->L, "invalid capture index %%%d", l + 1);
        }
        lua_pushlstring(m->L, (const char *)m->s + from, to - from);
    } else if (c->capkind[l] == K_UNFINISHED) {
        settle(m);
        luaL_error(m->L, "unfinished capture");
    } else if (c->capkind[l] == K_POSITION) {
        lua_pushinteger(m->L, (lua_Integer)m->cap_start[l] + 1);
    } else {
        lua_pushlstring(m->L, (const char *)m->s + m->cap_start[l], m->cap_end[l] - m->cap_start[l]);
    }
}

/* Every capture, or the whole match when there are none and whole is set. Returns the count. */
static int push_captures(mstate *m, size_t from, size_t to, int whole)
{
    int n = m->c->ncap == 0 && whole ? 1 : m->c->ncap;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, from, to);
    return n;
}

/* ---- the library functions ------------------------------------------------------------------- */

/* A 1-based (negative: from the end) position as a 0-based offset, clamped at the start. */
static size_t offset_of(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 0;
    return len + (size_t)pos;
}

static void mstate_init(mstate *m, lua_State *L, const char *fname, const char *s, size_t ls,
                        const char *p, const compiled *c)
{
    m->L = L;
    m->fname = fname;
    m->s = (const unsigned char *)s;
    m->ls = ls;
    m->p = (const unsigned char *)p;
    m->c = c;
    refill(m);
}

/* The characters that make find() match a pattern rather than search for plain text. */
static const unsigned char SPECIAL[256] = {
    ['^'] = 1, ['$'] = 1, ['*'] = 1, ['+'] = 1, ['?'] = 1, ['.'] = 1, ['('] = 1, ['['] = 1,
    ['%'] = 1, ['-'] = 1,
};

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (SPECIAL[(unsigned char)p[i]])
            return 1;
    return 0;
}

/* Plain text p in s: memmem, whose time is linear; a short needle is looked for with memchr
 * and memcmp, quicker to start, and at most 16 compares per subject byte. */
static const char *find_plain(const char *s, size_t ls, const char *p, size_t lp)
{
    if (lp == 0 || lp > 16)
        return memmem(s, ls, p, lp);
    if (lp > ls)
        return NULL;
    const char *q = s, *last = s + (ls - lp);   /* the last place p can start */
    while (q <= last && (q = memchr(q, p[0], (size_t)(last - q) + 1)) != NULL) {
        if (memcmp(q + 1, p + 1, lp - 1) == 0)
            return q;
        q++;
    }
    return NULL;
}

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = offset_of(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        /* a plain search: linear time, nothing to count */
        const char *hit = find_plain(s + init, ls - init, p, lp);
        if (!hit) {
            luaL_pushfail(L);
            return 1;
        }
        lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
        lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
        return 2;
    }
    room r;
    compiled c;
    mstate m;
    int anchor = lp > 0 && p[0] == '^';
    compile_into(L, p, lp, (size_t)anchor, &r, &c);
    mstate_init(&m, L, find ? "string.find" : "string.match", s, ls, p, &c);
    for (size_t pos = init;; pos++) {
        ptrdiff_t e = match_at(&m, pos);
        if (e >= 0) {
            settle(&m);
            if (!find)
                return push_captures(&m, pos, (size_t)e, 1);
            lua_pushinteger(L, (lua_Integer)pos + 1);
            lua_pushinteger(L, (lua_Integer)e);
            return push_captures(&m, pos, (size_t)e, 0) + 2;
        }
        if (anchor || pos >= ls)
            break;
    }
    settle(&m);
    luaL_pushfail(L);
    return 1;
}

static int str_find(lua_State *L) { return find_or_match(L, 1); }
static int str_match(lua_State *L) { return find_or_match(L, 0); }

/* gmatch's state: where the next search starts, where the last match ended, and the pattern
 * compiled once (the subject and pattern strings are upvalues 1 and 2, kept alive there). */
typedef struct gmatch_state {
    size_t    pos;
    ptrdiff_t last;
    compiled  c;
} gmatch_state;

static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    mstate m;
    mstate_init(&m, L, "string.gmatch", s, ls, p, &g->c);
    for (size_t pos = g->pos; pos <= ls; pos++) {
        ptrdiff_t e = match_at(&m, pos);
        /* an empty match right where the last one ended does not count (Lua 5.4) */
        if (e >= 0 && e != g->last) {
            g->pos = (size_t)e;
            g->last = e;
            settle(&m);
            return push_captures(&m, pos, (size_t)e, 1);
        }
    }
    settle(&m);
    return 0;
}

static int str_gmatch(lua_State *L)
{
    size_t ls, lp;
    luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = offset_of(luaL_optinteger(L, 3, 1), ls);
    compiled c;
    lua_settop(L, 2);   /* subject and pattern: upvalues of the iterator */
    /* no anchor: a '^' is a plain character here, as in Lua 5.4 */
    size_t n = compile(p, lp, 0, NULL, 0, &c);
    gmatch_state *g = lua_newuserdatauv(L, sizeof *g + n * sizeof(pitem) + c.nchoices * sizeof(choice), 0);
    g->c.items = (pitem *)(g + 1);
    g->c.choices = (choice *)(g->c.items + n);
    g->c.nitems = compile(p, lp, 0, g->c.items, n, &g->c);
    g->pos = init > ls ? ls + 1 : init;   /* past the end: nothing, not even an empty match */
    g->last = -1;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* gsub's replacement string for the match s[from, to): %0 the match, %1-%9 captures, %% a '%'. */
static void add_string(mstate *m, luaL_Buffer *b, const char *r, size_t lr, size_t from, size_t to)
{
    const char *pct;
    while ((pct = memchr(r, '%', lr)) != NULL) {
        luaL_addlstring(b, r, (size_t)(pct - r));
        size_t used = (size_t)(pct - r) + 2;
        char d = (size_t)(pct - r) + 1 < lr ? pct[1] : '\0';
        if (d == '%') {
            luaL_addchar(b, '%');
        } else if (d == '0') {
            luaL_addlstring(b, (const char *)m->s + from, to - from);
        } else if (isdigit((unsigned char)d)) {
            push_capture(m, d - '1', from, to);
            luaL_addvalue(b);   /* a position capture is a number: added as its text */
        } else {
            settle(m);
            luaL_error(m->L, "invalid use of '%%' in replacement string");
        }
        r += used;
        lr -= used;
    }
    luaL_addlstring(b, r, lr);
}

/* Adds the replacement of s[from, to) to b; returns 0 when the match is kept as it was (a table
 * or function gave false or nil). Table lookups and functions run script code: its instructions
 * count through the hook, so the steps taken so far are charged first and the rest re-read. */
static int add_value(mstate *m, luaL_Buffer *b, int tr, size_t from, size_t to)
{
    lua_State *L = m->L;
    if (tr == LUA_TSTRING || tr == LUA_TNUMBER) {
        size_t lr;
        const char *r = lua_tolstring(L, 3, &lr);
        add_string(m, b, r, lr, from, to);
        return 1;
    }
    settle(m);
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, from, to, 1);
        lua_call(L, n, 1);
    } else {
        push_capture(m, 0, from, to);
        lua_gettable(L, 3);
    }
    refill(m);
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, (const char *)m->s + from, to - from);
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int str_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                     tr == LUA_TTABLE, 3, "string/function/table");
    room r;
    compiled c;
    mstate m;
    luaL_Buffer b;
    int anchor = lp > 0 && p[0] == '^', changed = 0;
    compile_into(L, p, lp, (size_t)anchor, &r, &c);
    mstate_init(&m, L, "string.gsub", s, ls, p, &c);
    luaL_buffinit(L, &b);
    size_t pos = 0, kept = 0;           /* s[kept, pos) is copied as it is, at the next match */
    ptrdiff_t last = -1;
    lua_Integer n = 0;
    while (n < max) {
        ptrdiff_t e = match_at(&m, pos);
        if (e >= 0 && e != last) {      /* not an empty match where the last one ended */
            n++;
            luaL_addlstring(&b, s + kept, pos - kept);
            changed |= add_value(&m, &b, tr, pos, (size_t)e);
            pos = kept = (size_t)e;
            last = e;
        } else if (pos < ls) {
            pos++;
        } else {
            break;
        }
        if (anchor)
            break;
    }
    settle(&m);
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, s + kept, ls - kept);
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void sl__lua_patterns_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "find", str_find }, { "match", str_match }, { "gmatch", str_gmatch }, { "gsub", str_gsub },
        { NULL, NULL },
    };
    luaL_setfuncs(L, fns, 0);
    /* the cache lives as long as the state: a userdata anchored in the registry */
    sl_lua *s = sl__lua_of(L);
    s->patterns = lua_newuserdatauv(L, sizeof *s->patterns, 0);
    memset(s->patterns, 0, sizeof *s->patterns);
    lua_rawsetp(L, LUA_REGISTRYINDEX, s->patterns);
}
