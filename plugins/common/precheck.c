/*
 * precheck.c - DM's prechecks of a shard merge (its checker's auto_increment_ID and
 * schema_of_shard_tables), read from the sources' information_schema before a task copies
 * anything, and the target tables two tasks would both write.
 *
 * Why they refuse: the full phase creates a merged table from the CREATE TABLE of the shard it
 * reads first and loads every shard into it. Shards whose AUTO_INCREMENT ids overlap then hand
 * it rows with the same key, and with on_duplicate replace (the default) each shard's load
 * replaced the others' rows without a word (exploratory report D4: six shards, a quarter of the
 * rows left). Shards with other columns load into a table of one shard's columns, and a later
 * shard DDL waits for shards that already have it (D6). DM refuses both at its precheck
 * (dm/pkg/checker/table_structure.go; its auto-increment check failed in DM 1.x and is a warning
 * since, sluice keeps the refusal: its loader would replace the rows).
 */
#include "precheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dumpfmt.h"
#include "myconn.h"

/* How many shards or differences one message names before "and N more". */
#define NAMED_MAX 5

int sl_precheck_ignored(const json_t *ignore, const char *item)
{
    size_t i;
    json_t *x;
    json_array_foreach(ignore, i, x) {
        const char *s = json_string_value(x);
        if (s && (!strcmp(s, "all") || !strcmp(s, item)))
            return 1;
    }
    return 0;
}

/* ---- a shard's columns ------------------------------------------------------------------------ */

typedef struct pcol {
    char *name;
    char *type;        /* COLUMN_TYPE: "int(11) unsigned", "varchar(20)" */
    int   nullable;
    int   ai;          /* AUTO_INCREMENT */
    char *ukey;        /* ai: a unique key holding it (PRIMARY first), or NULL */
} pcol;

typedef struct pshard {
    const char *source, *schema, *table;
    pcol  *cols;
    size_t n, cap;
} pshard;

static void shard_clear(pshard *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->cols[i].name);
        free(s->cols[i].type);
        free(s->cols[i].ukey);
    }
    free(s->cols);
    s->cols = NULL;
    s->n = s->cap = 0;
}

static int shard_add(pshard *s, const char *name, const char *type, int nullable, int ai,
                     const char *ukey)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        pcol *v = realloc(s->cols, nc * sizeof *v);
        if (!v)
            return SL_ENOMEM;
        s->cols = v;
        s->cap = nc;
    }
    pcol *c = &s->cols[s->n];
    *c = (pcol){ strdup(name), strdup(type), nullable, ai, ukey ? strdup(ukey) : NULL };
    if (!c->name || !c->type || (ukey && !c->ukey)) {
        free(c->name);
        free(c->type);
        free(c->ukey);
        return SL_ENOMEM;
    }
    s->n++;
    return 0;
}

/* Read the columns of s (schema, table set) on db. A table gone since the listing has none. */
static int shard_read(MYSQL *db, pshard *s, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    /* the unique key of an AUTO_INCREMENT column: DM's check is about primary and unique keys
     * (a plain KEY on it makes no collision) */
    sl_sbuf_adds(&q, "SELECT c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE = 'YES', "
                     "c.EXTRA LIKE '%auto_increment%', IF(c.EXTRA LIKE '%auto_increment%', "
                     "(SELECT s.INDEX_NAME FROM information_schema.STATISTICS s "
                     "WHERE s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME "
                     "AND s.COLUMN_NAME = c.COLUMN_NAME AND s.NON_UNIQUE = 0 "
                     "ORDER BY s.INDEX_NAME <> 'PRIMARY', s.INDEX_NAME LIMIT 1), NULL) "
                     "FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = ");
    sl_sbuf_add_quoted(&q, s->schema, strlen(s->schema));
    sl_sbuf_adds(&q, " AND c.TABLE_NAME = ");
    sl_sbuf_add_quoted(&q, s->table, strlen(s->table));
    sl_sbuf_adds(&q, " ORDER BY c.ORDINAL_POSITION");
    int rc = q.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                   : sl_verify_query(db, q.p, q.len, err);
    sl_sbuf_free(&q);
    if (rc < 0)
        return rc;
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW r;
    while (rc == 0 && res && (r = mysql_fetch_row(res)))
        rc = shard_add(s, r[0] ? r[0] : "", r[1] ? r[1] : "", r[2] && !strcmp(r[2], "1"),
                       r[3] && !strcmp(r[3], "1"), r[4]);
    if (res)
        mysql_free_result(res);
    return rc < 0 ? sl_error_set(err, rc, "out of memory") : 0;
}

static const pcol *find_col(const pshard *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcasecmp(s->cols[i].name, name))   /* column names are case-insensitive */
            return &s->cols[i];
    return NULL;
}

/* "source `schema`.`table`" */
static void add_shard_name(sl_sbuf *b, const pshard *s)
{
    sl_sbuf_addf(b, "%s ", s->source);
    sl_sbuf_add_qname(b, s->schema, s->table);
}

/* "`name` type NULL|NOT NULL" */
static void add_col(sl_sbuf *b, const pcol *c)
{
    sl_sbuf_add_ident(b, c->name);
    sl_sbuf_addf(b, " %s %s", c->type, c->nullable ? "NULL" : "NOT NULL");
}

/* ---- schema_of_shard_tables ------------------------------------------------------------------ */

/* Pessimistic (and no shard_mode): DM's ShardingTablesChecker wants the same column list, in
 * order. The first difference of o from ref, said in b; 0 when there is none. */
static int first_difference(const pshard *ref, const pshard *o, sl_sbuf *b)
{
    size_t n = ref->n < o->n ? ref->n : o->n;
    for (size_t i = 0; i < n; i++) {
        const pcol *x = &ref->cols[i], *y = &o->cols[i];
        if (!strcasecmp(x->name, y->name) && !strcasecmp(x->type, y->type) &&
            x->nullable == y->nullable)
            continue;
        sl_sbuf_addf(b, "column %zu is ", i + 1);
        add_col(b, x);
        sl_sbuf_adds(b, " in ");
        add_shard_name(b, ref);
        sl_sbuf_adds(b, " but ");
        add_col(b, y);
        sl_sbuf_adds(b, " in ");
        add_shard_name(b, o);
        return 1;
    }
    if (ref->n == o->n)
        return 0;
    const pshard *more = ref->n > o->n ? ref : o, *less = more == ref ? o : ref;
    add_shard_name(b, more);
    sl_sbuf_adds(b, " has column ");
    add_col(b, &more->cols[n]);
    sl_sbuf_adds(b, ", which ");
    add_shard_name(b, less);
    sl_sbuf_addf(b, " lacks (%zu columns against %zu)", more->n, less->n);
    return 1;
}

/* The type's name (leading letters, lower case) and whether it is unsigned. */
static void type_word(const char *t, char *out, size_t n, int *is_unsigned)
{
    size_t k = 0;
    while (((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z')) && k + 1 < n)
        out[k++] = (char)(*t++ | 0x20);
    out[k] = '\0';
    *is_unsigned = strstr(t, "unsigned") != NULL;
}

static int in_words(const char *w, const char *const *v)
{
    for (; *v; v++)
        if (!strcmp(w, *v))
            return 1;
    return 0;
}

/* 1 if the ENUM or SET type a (information_schema's COLUMN_TYPE: members quoted, a quote in
 * one doubled) lists the members of b first: "enum('a','b')" begins "enum('a','b','c')". */
static int list_begins(const char *a, const char *b)
{
    size_t lb = strlen(b);
    if (lb < 2 || b[lb - 1] != ')')
        return 0;
    return !strncmp(a, b, lb - 1) && (a[lb - 1] == ',' || a[lb - 1] == ')');
}

/* Optimistic: 1 if two types of a column join, as DM's optimistic mode (and sluice's, see
 * docs/tasks.md "Type widening") widens them: integers of one signedness, one of CHAR, VARCHAR,
 * BINARY, VARBINARY at two lengths, DECIMAL, the TEXT or the BLOB types, one of TIME, DATETIME,
 * TIMESTAMP at two precisions, ENUM or SET lists one of which begins the other (members
 * compared as written); or the same type. */
static int types_join(const char *a, const char *b)
{
    static const char *const ints[] = { "tinyint", "smallint", "mediumint", "int", "integer",
                                        "bigint", NULL };
    static const char *const decs[] = { "decimal", "numeric", "dec", NULL };
    static const char *const texts[] = { "tinytext", "text", "mediumtext", "longtext", NULL };
    static const char *const blobs[] = { "tinyblob", "blob", "mediumblob", "longblob", NULL };
    static const char *const lists[] = { "enum", "set", NULL };
    char wa[32], wb[32];
    int ua, ub;
    type_word(a, wa, sizeof wa, &ua);
    type_word(b, wb, sizeof wb, &ub);
    if (in_words(wa, lists) || in_words(wb, lists))
        return !strcmp(wa, wb) && (list_begins(a, b) || list_begins(b, a));
    if (!strcasecmp(a, b))
        return 1;
    if (ua != ub)
        return 0;
    if (in_words(wa, ints) && in_words(wb, ints))
        return 1;
    if (in_words(wa, decs) && in_words(wb, decs))
        return 1;
    if ((in_words(wa, texts) && in_words(wb, texts)) || (in_words(wa, blobs) && in_words(wb, blobs)))
        return 1;
    static const char *const strs[] = { "char", "varchar", "binary", "varbinary", "time",
                                        "datetime", "timestamp", NULL };
    return in_words(wa, strs) && !strcmp(wa, wb);
}

/* Optimistic: fold o into joined (the union of the shards' columns so far, by name). Returns
 * 0 when o joins (*differs set when it is not the same columns), or 1 with the conflict said in
 * b. */
static int join_into(pshard *joined, const pshard *ref_for, const pshard *o, int *differs,
                     sl_sbuf *b)
{
    if (joined->n != o->n)
        *differs = 1;
    for (size_t i = 0; i < o->n; i++) {
        const pcol *y = &o->cols[i], *x = find_col(joined, y->name);
        if (!x) {
            *differs = 1;
            if (shard_add(joined, y->name, y->type, y->nullable, y->ai, y->ukey) < 0)
                return -1;
            continue;
        }
        if (!strcasecmp(x->type, y->type) && x->nullable == y->nullable)
            continue;
        *differs = 1;
        if (types_join(x->type, y->type))
            continue;
        sl_sbuf_adds(b, "column ");
        sl_sbuf_add_ident(b, y->name);
        sl_sbuf_addf(b, " is %s in ", x->type);
        add_shard_name(b, ref_for);
        sl_sbuf_addf(b, " (or a shard read before it) but %s in ", y->type);
        add_shard_name(b, o);
        sl_sbuf_adds(b, ", and those types do not join (optimistic mode widens integers of one "
                        "signedness, CHAR, VARCHAR, BINARY or VARBINARY of one kind, DECIMAL, the "
                        "TEXT or the BLOB types, TIME, DATETIME or TIMESTAMP of one kind, an ENUM "
                        "or SET list that another begins)");
        return 1;
    }
    return 0;
}

/* ---- one target table ------------------------------------------------------------------------ */

typedef struct group_check {
    const sl_verify_task *vt;
    const sl_verify_table *g;
    MYSQL **dbs;                /* one per source of vt, opened when first needed */
    int    check_ai, check_schema, optimistic;
    json_t *out;
} group_check;

static void problem(json_t *out, const char *item, int error, const sl_sbuf *b)
{
    json_array_append_new(out, json_pack("{s:s,s:b,s:o}", "item", item, "error", error, "msg",
                                         json_stringn(b->p ? b->p : "", b->len)));
}

static int shard_of(group_check *c, size_t k, pshard *s, sl_error *err)
{
    const sl_verify_src *src = &c->g->src[k];
    int i = sl_verify_task_source(c->vt, src->conn);
    if (i < 0)
        return sl_error_set(err, SL_EINTERNAL, "a shard of an unknown source");
    *s = (pshard){ .source = sl_verify_task_source_name(c->vt, (size_t)i), .schema = src->schema,
                   .table = src->table };
    if (!c->dbs[i] && !(c->dbs[i] = sl_myconn_open(src->conn, err))) {
        sl_error_prefix(err, "source %s", s->source);
        return err->code = SL_ECONN;
    }
    int rc = shard_read(c->dbs[i], s, err);
    if (rc < 0)
        sl_error_prefix(err, "source %s: reading the columns of `%s`.`%s`", s->source, s->schema,
                        s->table);
    return rc;
}

/* The AUTO_INCREMENT column in a unique key of s, or NULL. */
static const pcol *ai_key(const pshard *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->cols[i].ai && s->cols[i].ukey)
            return &s->cols[i];
    return NULL;
}

static void add_target(sl_sbuf *b, const sl_verify_table *g)
{
    sl_sbuf_adds(b, "target table ");
    sl_sbuf_add_qname(b, g->tschema, g->ttable);
}

static int check_group(group_check *c, sl_error *err)
{
    const sl_verify_table *g = c->g;
    pshard ref = {0}, joined = {0}, s = {0};
    sl_sbuf ai, diff;
    sl_sbuf_init(&ai);
    sl_sbuf_init(&diff);
    size_t nai = 0, ndiff = 0, nread = 0;
    const pcol *ai_col = NULL;
    char ai_name[200] = "", ai_keyname[200] = "";
    int rc = 0, differs = 0, conflict = 0;
    for (size_t k = 0; k < g->nsrc && rc == 0; k++) {
        pshard *cur = nread ? &s : &ref;
        if ((rc = shard_of(c, k, cur, err)) < 0)
            break;
        if (!cur->n)            /* dropped since the listing: nothing to merge */
            continue;
        nread++;
        if (c->check_ai && (ai_col = ai_key(cur))) {
            if (!nai) {
                snprintf(ai_name, sizeof ai_name, "%s", ai_col->name);
                snprintf(ai_keyname, sizeof ai_keyname, "%s", ai_col->ukey);
            }
            if (nai++ < NAMED_MAX) {
                sl_sbuf_adds(&ai, nai > 1 ? ", " : "");
                add_shard_name(&ai, cur);
            }
        }
        if (c->check_schema && cur == &s && !conflict) {
            if (c->optimistic) {
                if (!joined.n)
                    for (size_t i = 0; i < ref.n && rc == 0; i++)
                        rc = shard_add(&joined, ref.cols[i].name, ref.cols[i].type,
                                       ref.cols[i].nullable, 0, NULL);
                sl_sbuf_reset(&diff);
                int j = rc < 0 ? rc : join_into(&joined, &ref, cur, &differs, &diff);
                if (j < 0)
                    rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                conflict = j > 0;
            } else if (ndiff < NAMED_MAX) {
                size_t mark = diff.len;
                sl_sbuf_adds(&diff, ndiff ? "; " : "");
                if (first_difference(&ref, cur, &diff))
                    ndiff++;
                else
                    sl_sbuf_truncate(&diff, mark);
            } else {
                sl_sbuf tmp;
                sl_sbuf_init(&tmp);
                ndiff += first_difference(&ref, cur, &tmp);
                sl_sbuf_free(&tmp);
            }
        }
        if (cur == &s)
            shard_clear(&s);
    }
    sl_sbuf msg;
    sl_sbuf_init(&msg);
    if (rc == 0 && nai && nread > 1) {
        add_target(&msg, g);
        sl_sbuf_addf(&msg, " merges %zu source tables, and in %zu of them (", g->nsrc, nai);
        sl_sbuf_add(&msg, ai.p, ai.len);
        if (nai > NAMED_MAX)
            sl_sbuf_addf(&msg, " and %zu more", nai - NAMED_MAX);
        sl_sbuf_addf(&msg, ") the key %s holds the AUTO_INCREMENT column ", ai_keyname);
        sl_sbuf_add_ident(&msg, ai_name);
        sl_sbuf_adds(&msg, ": each shard counts its ids from 1, so shards hold rows with the same "
                           "key, and the load would replace one shard's row with another's. Make "
                           "the key unique across the shards (a different auto_increment_offset "
                           "per shard, or a key that includes a shard column), or add "
                           "\"" SL_PRECHECK_AUTO_INCREMENT "\" to ignore_checking_items: the load "
                           "then stops at the first key two shards share instead of replacing "
                           "a row");
        problem(c->out, SL_PRECHECK_AUTO_INCREMENT, 1, &msg);
    }
    sl_sbuf_reset(&msg);
    if (rc == 0 && (conflict || ndiff)) {
        add_target(&msg, g);
        sl_sbuf_adds(&msg, " merges source tables whose columns ");
        sl_sbuf_adds(&msg, c->optimistic ? "do not join: " : "differ: ");
        sl_sbuf_add(&msg, diff.p, diff.len);
        if (ndiff > NAMED_MAX)
            sl_sbuf_addf(&msg, "; and %zu more shards differ", ndiff - NAMED_MAX);
        sl_sbuf_adds(&msg, c->optimistic ? "" : ". The full phase creates the target table from "
                     "the CREATE TABLE of one shard, so the others' rows may not fit it, and a "
                     "shard DDL waits for every shard to run the same one");
        sl_sbuf_adds(&msg, ". Give the shards the same columns (names, types, nullability, order) "
                           "before the start, or add \"" SL_PRECHECK_SHARD_SCHEMA "\" to "
                           "ignore_checking_items");
        problem(c->out, SL_PRECHECK_SHARD_SCHEMA, 1, &msg);
    } else if (rc == 0 && differs) {
        add_target(&msg, g);
        sl_sbuf_adds(&msg, " merges source tables whose columns differ in ways optimistic mode "
                           "joins, but the full phase creates the target table from the CREATE "
                           "TABLE of one shard: create it on the target with the joined columns "
                           "before the start, or the rows of a shard with a column the created "
                           "table lacks or a wider type stop the load");
        problem(c->out, SL_PRECHECK_SHARD_SCHEMA, 0, &msg);
    }
    if (msg.oom || ai.oom || diff.oom)
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    sl_sbuf_free(&msg);
    sl_sbuf_free(&ai);
    sl_sbuf_free(&diff);
    shard_clear(&ref);
    shard_clear(&joined);
    shard_clear(&s);
    return rc;
}

int sl_precheck_shards(const sl_verify_task *vt, const char *shard_mode, const json_t *ignore,
                       json_t *out, sl_error *err)
{
    group_check c = {
        .vt = vt, .out = out,
        .check_ai = !sl_precheck_ignored(ignore, SL_PRECHECK_AUTO_INCREMENT),
        .check_schema = !sl_precheck_ignored(ignore, SL_PRECHECK_SHARD_SCHEMA),
        .optimistic = shard_mode && !strcmp(shard_mode, "optimistic"),
    };
    if (!c.check_ai && !c.check_schema)
        return 0;
    if (!(c.dbs = calloc(vt->nsrc ? vt->nsrc : 1, sizeof *c.dbs)))
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < vt->ntables && rc == 0; i++) {
        if (vt->tables[i].nsrc < 2)
            continue;
        c.g = &vt->tables[i];
        rc = check_group(&c, err);
    }
    for (size_t i = 0; i < vt->nsrc; i++)
        if (c.dbs[i])
            mysql_close(c.dbs[i]);
    free(c.dbs);
    return rc;
}

/* ---- has the task begun? --------------------------------------------------------------------- */

int sl_precheck_started(const sl_myconn_opts *target, const char *meta_schema, const char *task,
                        sl_error *err)
{
    MYSQL *db = sl_myconn_open(target, err);
    if (!db) {
        sl_error_prefix(err, "target");
        return err->code = SL_ECONN;
    }
    int started = 0, rc = 0;
    for (int syncer = 0; syncer < 2 && !started && rc == 0; syncer++) {
        sl_sbuf q;
        sl_sbuf_init(&q);
        sl_sbuf_adds(&q, "SELECT 1 FROM ");
        sl_ckpt_table_name(&q, meta_schema, task, syncer);
        sl_sbuf_adds(&q, " LIMIT 1");
        if (q.oom) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        } else if (mysql_real_query(db, q.p, (unsigned long)q.len) != 0) {
            unsigned e = mysql_errno(db);
            if (e != 1146 && e != 1049)   /* no such table / database: nothing begun */
                rc = sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                                  "target: reading the checkpoint of task %s: %s (errno %u)",
                                  task, mysql_error(db), e);
        } else {
            MYSQL_RES *res = mysql_store_result(db);
            started = res && mysql_num_rows(res) > 0;
            if (res)
                mysql_free_result(res);
        }
        sl_sbuf_free(&q);
    }
    mysql_close(db);
    return rc < 0 ? rc : started;
}

/* ---- two tasks, one target table ------------------------------------------------------------- */

size_t sl_precheck_common_targets(const sl_verify_task *a, const sl_verify_task *b, json_t *out,
                                  size_t max)
{
    if (!a->target.host || !b->target.host || strcasecmp(a->target.host, b->target.host) ||
        a->target.port != b->target.port)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < a->ntables; i++) {
        const sl_verify_table *x = &a->tables[i];
        for (size_t j = 0; j < b->ntables; j++) {
            const sl_verify_table *y = &b->tables[j];
            if (strcmp(x->tschema, y->tschema) || strcmp(x->ttable, y->ttable))
                continue;
            if (n++ < max) {
                sl_sbuf s;
                sl_sbuf_init(&s);
                sl_sbuf_add_qname(&s, x->tschema, x->ttable);
                if (!s.oom)
                    json_array_append_new(out, json_stringn(s.p, s.len));
                sl_sbuf_free(&s);
            }
            break;
        }
    }
    return n;
}
