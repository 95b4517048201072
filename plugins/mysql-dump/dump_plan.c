/*
 * dump_plan.c - what a dump reads: the base tables the task's rules select, their columns (minus
 * generated ones), the key chunks split on, CREATE statements, and the chunk plan: a single
 * integer key is split into equal value ranges between its MIN and MAX; any other key (strings,
 * temporal, DECIMAL, composite) is split at boundaries found by walking the key in index order,
 * chunk_rows rows at a time. Ranges are open at both ends, so any boundaries partition the table.
 */
#include "dump.h"
#include "ddl.h"
#include "oscname.h"
#include "xtype.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sl__dump_exec(dump *d, MYSQL *db, const char *sql)
{
    sl_error e = {0};
    int rc = sl_myconn_exec(db, sql, strlen(sql), &e);
    if (rc)
        return d->host->fail(d->ctx, rc, "source: %s", e.msg);
    return 0;
}

static MYSQL_RES *query(dump *d, const char *sql)
{
    if (mysql_real_query(d->main, sql, (unsigned long)strlen(sql)) != 0) {
        d->host->fail(d->ctx, sl_myconn_is_conn_error(mysql_errno(d->main)) ? SL_ECONN : SL_EDB,
                      "source: %s (errno %u) in: %.200s", mysql_error(d->main),
                      mysql_errno(d->main), sql);
        return NULL;
    }
    MYSQL_RES *r = mysql_store_result(d->main);
    if (!r)
        d->host->fail(d->ctx, SL_EDB, "source: no result for: %.200s", sql);
    return r;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s ? s : "", s ? n : 0);
        p[s ? n : 0] = '\0';
    }
    return p;
}
static char *xstrdup(const char *s) { return xstrndup(s, s ? strlen(s) : 0); }

static const char *const system_schemas[] = {
    "mysql", "information_schema", "performance_schema", "sys", NULL
};

static int is_system_schema(const char *s)
{
    for (int i = 0; system_schemas[i]; i++)
        if (strcasecmp(s, system_schemas[i]) == 0)
            return 1;
    return 0;
}

static uint8_t mysql_type_of(const char *dt)
{
    static const struct { const char *n; uint8_t t; } m[] = {
        {"tinyint", MYSQL_TYPE_TINY}, {"smallint", MYSQL_TYPE_SHORT}, {"mediumint", MYSQL_TYPE_INT24},
        {"int", MYSQL_TYPE_LONG}, {"bigint", MYSQL_TYPE_LONGLONG}, {"float", MYSQL_TYPE_FLOAT},
        {"double", MYSQL_TYPE_DOUBLE}, {"decimal", MYSQL_TYPE_NEWDECIMAL},
        {"date", MYSQL_TYPE_DATE}, {"time", MYSQL_TYPE_TIME}, {"datetime", MYSQL_TYPE_DATETIME},
        {"timestamp", MYSQL_TYPE_TIMESTAMP}, {"year", MYSQL_TYPE_YEAR},
        {"char", MYSQL_TYPE_STRING}, {"binary", MYSQL_TYPE_STRING},
        {"varchar", MYSQL_TYPE_VARCHAR}, {"varbinary", MYSQL_TYPE_VARCHAR},
        {"tinytext", MYSQL_TYPE_BLOB}, {"text", MYSQL_TYPE_BLOB}, {"mediumtext", MYSQL_TYPE_BLOB},
        {"longtext", MYSQL_TYPE_BLOB}, {"tinyblob", MYSQL_TYPE_BLOB}, {"blob", MYSQL_TYPE_BLOB},
        {"mediumblob", MYSQL_TYPE_BLOB}, {"longblob", MYSQL_TYPE_BLOB}, {"json", MYSQL_TYPE_BLOB},
        {"enum", MYSQL_TYPE_ENUM}, {"set", MYSQL_TYPE_SET}, {"bit", MYSQL_TYPE_BIT},
        {"geometry", MYSQL_TYPE_GEOMETRY}, {"point", MYSQL_TYPE_GEOMETRY},
        {"linestring", MYSQL_TYPE_GEOMETRY}, {"polygon", MYSQL_TYPE_GEOMETRY},
        {"multipoint", MYSQL_TYPE_GEOMETRY}, {"multilinestring", MYSQL_TYPE_GEOMETRY},
        {"multipolygon", MYSQL_TYPE_GEOMETRY}, {"geometrycollection", MYSQL_TYPE_GEOMETRY},
    };
    const sl_xtype *x = sl_xtype_find(dt);
    if (x)
        return x->mysql_type;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcasecmp(dt, m[i].n) == 0)
            return m[i].t;
    return MYSQL_TYPE_STRING;
}

int sl__dump_binary_type(const char *data_type)
{
    static const char *const bin[] = {"binary", "varbinary", "tinyblob", "blob", "mediumblob",
                                      "longblob", "geometry", "point", "linestring", "polygon",
                                      "multipoint", "multilinestring", "multipolygon",
                                      "geometrycollection", NULL};
    for (int i = 0; data_type && bin[i]; i++)
        if (strcasecmp(data_type, bin[i]) == 0)
            return 1;
    return sl_xtype_find(data_type) != NULL;   /* dumped in their binary form (xtype.h) */
}

static int coll_cmp(const void *a, const void *b)
{
    return strcmp(((const dcoll *)a)->name, ((const dcoll *)b)->name);
}

/* Append the (name, id) rows of sql to d->colls. ok_errno: an error the server may give because
 * it lacks the table or column (older servers, MySQL); it adds nothing. */
static int read_colls(dump *d, const char *sql, unsigned ok_errno, size_t *cap)
{
    if (mysql_real_query(d->main, sql, (unsigned long)strlen(sql)) != 0) {
        if (mysql_errno(d->main) == ok_errno)
            return 0;
        return d->host->fail(d->ctx, sl_myconn_is_conn_error(mysql_errno(d->main)) ? SL_ECONN : SL_EDB,
                             "source: %s (errno %u) in: %.200s", mysql_error(d->main),
                             mysql_errno(d->main), sql);
    }
    MYSQL_RES *r = mysql_store_result(d->main);
    if (!r)
        return d->host->fail(d->ctx, SL_EDB, "source: no result for: %.200s", sql);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r))) {
        if (!row[0] || !row[1])
            continue;
        if (d->ncolls == *cap) {
            size_t n = *cap ? *cap * 2 : 256;
            dcoll *p = realloc(d->colls, n * sizeof *p);
            if (!p) {
                mysql_free_result(r);
                return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
            }
            d->colls = p;
            *cap = n;
        }
        dcoll *c = &d->colls[d->ncolls];
        if (!(c->name = xstrdup(row[0]))) {
            mysql_free_result(r);
            return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        }
        c->id = (uint16_t)strtoul(row[1], NULL, 10);
        d->ncolls++;
    }
    mysql_free_result(r);
    return 0;
}

/*
 * The id of a collation named as information_schema.COLUMNS.COLLATION_NAME shows it. The source's
 * collations are read once per plan: INFORMATION_SCHEMA.COLLATIONS (ID), and on MariaDB 10.10+
 * COLLATION_CHARACTER_SET_APPLICABILITY (FULL_COLLATION_NAME, ID), which alone has the ids of the
 * UCA 14.0 collations ("utf8mb4_uca1400_ai_ci" is "uca1400_ai_ci" with a NULL ID in COLLATIONS;
 * MariaDB KB "Information Schema COLLATION_CHARACTER_SET_APPLICABILITY Table"). *id = 0 when the
 * name is unknown. Returns 0 or a negative code after host->fail.
 */
int sl__dump_collation_id(dump *d, const char *name, uint16_t *id)
{
    *id = 0;
    if (!d->colls_read) {
        size_t cap = 0;
        int rc = read_colls(d, "SELECT COLLATION_NAME, ID FROM information_schema.COLLATIONS "
                               "WHERE ID IS NOT NULL", 0, &cap);
        if (rc == 0)
            rc = read_colls(d, "SELECT FULL_COLLATION_NAME, ID FROM "
                               "information_schema.COLLATION_CHARACTER_SET_APPLICABILITY",
                            1054 /* ER_BAD_FIELD_ERROR */, &cap);
        if (rc < 0)
            return rc;
        if (d->ncolls)
            qsort(d->colls, d->ncolls, sizeof *d->colls, coll_cmp);
        d->colls_read = 1;
    }
    dcoll key = {.name = (char *)name};
    const dcoll *c = d->ncolls ? bsearch(&key, d->colls, d->ncolls, sizeof *d->colls, coll_cmp) : NULL;
    if (c)
        *id = c->id;
    return 0;
}

static int is_int_type(uint8_t t)
{
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_INT24 ||
           t == MYSQL_TYPE_LONG || t == MYSQL_TYPE_LONGLONG;
}

/* "CREATE TABLE `t`" -> "CREATE TABLE IF NOT EXISTS `t`" (same for DATABASE). */
static char *add_if_not_exists(const char *sql, const char *kw)
{
    size_t kl = strlen(kw);
    if (strncasecmp(sql, kw, kl) != 0 || strncasecmp(sql + kl, " IF NOT EXISTS", 14) == 0)
        return xstrdup(sql);
    size_t n = strlen(sql);
    char *p = malloc(n + 15);
    if (!p)
        return NULL;
    memcpy(p, sql, kl);
    memcpy(p + kl, " IF NOT EXISTS", 14);
    memcpy(p + kl + 14, sql + kl, n - kl + 1);
    return p;
}

static int add_schema(dump *d, const char *s)
{
    for (size_t i = 0; i < d->nschemas; i++)
        if (strcmp(d->schemas[i], s) == 0)
            return 0;
    char **v = realloc(d->schemas, (d->nschemas + 1) * sizeof *v);
    if (!v)
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    d->schemas = v;
    char **w = realloc(d->schema_sql, (d->nschemas + 1) * sizeof *w);
    if (!w)
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    d->schema_sql = w;
    d->schemas[d->nschemas] = xstrdup(s);
    d->schema_sql[d->nschemas] = NULL;
    d->nschemas++;
    return d->schemas[d->nschemas - 1] ? 0 : d->host->fail(d->ctx, SL_ENOMEM, "no memory");
}

/*
 * How a key column's value is written back into a WHERE condition so that the server compares it
 * exactly as it orders the index: numbers as they are (a quoted DECIMAL would compare as DOUBLE),
 * temporal values quoted (the session is in UTC, as when they were read), character strings as
 * their bytes with the column's charset introducer (the literal is coercible, so the comparison
 * uses the column's collation: 'a' and 'A' are equal under a _ci collation both in ORDER BY and
 * in the condition), binary strings as _binary bytes. FLOAT/DOUBLE (text is not exact), BIT,
 * ENUM/SET (ORDER BY uses the index number, comparison the label) and the rest are not split on.
 */
enum { KEY_NONE = 0, KEY_NUM, KEY_QUOTED, KEY_STRING, KEY_BINARY };

static int key_kind(const dcol *c)
{
    static const char *const num[] = {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", NULL};
    static const char *const quoted[] = {"date", "datetime", "timestamp", "time", "year", NULL};
    static const char *const str[] = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", NULL};
    static const char *const bin[] = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", NULL};
    for (int i = 0; num[i]; i++)
        if (strcmp(c->data_type, num[i]) == 0)
            return KEY_NUM;
    for (int i = 0; quoted[i]; i++)
        if (strcmp(c->data_type, quoted[i]) == 0)
            return KEY_QUOTED;
    for (int i = 0; str[i]; i++)
        if (strcmp(c->data_type, str[i]) == 0) {
            if (!c->charset || !*c->charset)
                return KEY_NONE;
            for (const char *p = c->charset; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '_')
                    return KEY_NONE;
            return KEY_STRING;
        }
    for (int i = 0; bin[i]; i++)
        if (strcmp(c->data_type, bin[i]) == 0)
            return KEY_BINARY;
    /* an extended type's key is read in its text form ("::1"): quoted, the server converts it */
    const sl_xtype *x = sl_xtype_find(c->data_type);
    if (x && x->key_text)
        return KEY_QUOTED;
    return KEY_NONE;
}

/* Append the SQL literal of a key value read with character_set_results = binary. */
static void add_key_literal(sl_sbuf *b, const dcol *c, const char *v, size_t len)
{
    switch (key_kind(c)) {
    case KEY_NUM:
        for (size_t i = 0; i < len; i++)
            if (!isdigit((unsigned char)v[i]) && v[i] != '-' && v[i] != '.') {
                sl_sbuf_add_quoted(b, v, len);     /* never expected: stay a literal anyway */
                return;
            }
        sl_sbuf_add(b, v, len);
        break;
    case KEY_STRING:
        sl_sbuf_addf(b, "_%s ", c->charset);
        sl_sbuf_add_hex(b, (const unsigned char *)v, len);
        break;
    case KEY_BINARY:
        sl_sbuf_adds(b, "_binary ");
        sl_sbuf_add_hex(b, (const unsigned char *)v, len);
        break;
    default:
        sl_sbuf_add_quoted(b, v, len);
        break;
    }
}

/* One row of information_schema.COLUMNS (COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE,
 * IS_GENERATED, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME) added to t's columns.
 * The caller's result must be stored: the collation lookup may run a query on d->main. */
static int add_column(dump *d, dtable *t, MYSQL_ROW row)
{
    if (row[3] && strcmp(row[3], "NEVER") != 0)
        return 0;                   /* generated: computed by the target */
    dcol *v = realloc(t->cols, (t->ncols + 1) * sizeof *v);
    if (!v)
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    t->cols = v;
    dcol *c = &t->cols[t->ncols++];
    memset(c, 0, sizeof *c);
    c->name = xstrdup(row[0]);
    c->data_type = xstrdup(row[1]);
    c->type_text = xstrdup(row[2]);
    c->mysql_type = mysql_type_of(row[1]);
    if (row[2] && strstr(row[2], "unsigned"))
        c->flags |= SL_COL_UNSIGNED;
    if (row[4] && strcmp(row[4], "YES") == 0)
        c->flags |= SL_COL_NULLABLE;
    c->charset = row[5] ? xstrdup(row[5]) : NULL;
    if (!c->name || !c->data_type || !c->type_text || (row[5] && !c->charset))
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    if (row[6] && *row[6]) {
        /* a character column (CHAR, VARCHAR, TEXT, ENUM, SET, JSON as LONGTEXT) */
        int rc = sl__dump_collation_id(d, row[6], &c->collation);
        if (rc < 0)
            return rc;
        if (!c->collation)
            d->host->log(d->ctx, SL_LOG_WARN, "%s.%s column %s: collation %s has no id in "
                         "the source's information_schema (its sl_column.charset stays 0)",
                         t->schema, t->name, c->name, row[6]);
    } else {
        c->collation = sl__dump_binary_type(c->data_type) ? 63 : 0;
    }
    if (c->collation == 63)
        c->flags |= SL_COL_BINARY;
    return 0;
}

/*
 * The key a table is chunked on, from its rows of information_schema.STATISTICS (unique indexes
 * only, the primary key first, then by name, columns in order): the primary key, else the first
 * unique key whose columns are all NOT NULL and dumped. Rows are fed one at a time.
 */
typedef struct keypick {
    char     cur[256];
    int      chosen, bad;
    uint32_t cand[16];
    size_t   ncand;
} keypick;

static void keypick_row(keypick *k, const dtable *t, const char *index, const char *col,
                        const char *nullable)
{
    if (k->chosen || !index || !col)
        return;
    if (strcmp(k->cur, index) != 0) {
        if (k->cur[0] && !k->bad && k->ncand) {
            k->chosen = 1;
            return;
        }
        snprintf(k->cur, sizeof k->cur, "%s", index);
        k->bad = 0;
        k->ncand = 0;
    }
    if (nullable && strcmp(nullable, "YES") == 0)
        k->bad = 1;
    int found = -1;
    for (size_t i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, col) == 0)
            found = (int)i;
    if (found < 0 || k->ncand == 16)
        k->bad = 1;                  /* a generated column in the key, or too wide a key */
    else
        k->cand[k->ncand++] = (uint32_t)found;
}

static void keypick_done(keypick *k, dtable *t)
{
    if (!k->chosen && k->cur[0] && !k->bad && k->ncand)
        k->chosen = 1;
    t->chunk_col = -1;
    if (!k->chosen)
        return;
    t->npk = k->ncand;
    memcpy(t->pk, k->cand, k->ncand * sizeof k->cand[0]);
    for (size_t i = 0; i < k->ncand; i++)
        t->cols[k->cand[i]].flags |= SL_COL_PK;
    if (k->ncand == 1 && is_int_type(t->cols[k->cand[0]].mysql_type)) {
        t->chunk_col = (int)k->cand[0];
        t->chunk_unsigned = (t->cols[k->cand[0]].flags & SL_COL_UNSIGNED) != 0;
    } else {
        while (t->nwalk < k->ncand && key_kind(&t->cols[k->cand[t->nwalk]]) != KEY_NONE)
            t->nwalk++;
    }
}

/* CREATE TABLE of one table (SHOW CREATE TABLE, made IF NOT EXISTS) into *out. */
static int read_create(dump *d, const dtable *t, char **out)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "SHOW CREATE TABLE ");
    sl_sbuf_add_qname(&b, t->schema, t->name);
    int oom = b.oom;
    MYSQL_RES *r = oom ? NULL : query(d, b.p);
    sl_sbuf_free(&b);
    if (!r)
        return oom ? d->host->fail(d->ctx, SL_ENOMEM, "no memory") : SL_EDB;
    MYSQL_ROW row = mysql_fetch_row(r);
    if (!row || mysql_num_fields(r) < 2 || !row[1]) {
        mysql_free_result(r);
        return d->host->fail(d->ctx, SL_EDB, "source: SHOW CREATE TABLE %s.%s gave nothing",
                             t->schema, t->name);
    }
    *out = add_if_not_exists(row[1], "CREATE TABLE");
    mysql_free_result(r);
    return *out ? 0 : d->host->fail(d->ctx, SL_ENOMEM, "no memory");
}

/* a and b equal but for the AUTO_INCREMENT=N table option (it moves with every insert): the
 * options follow the definitions' closing parenthesis, which SHOW CREATE puts on its own line. */
static int same_structure(const char *a, const char *b)
{
    const char *ta = strstr(a, "\n)"), *tb = strstr(b, "\n)");
    for (const char *p = ta; p; p = strstr(p + 1, "\n)"))
        ta = p;
    for (const char *p = tb; p; p = strstr(p + 1, "\n)"))
        tb = p;
    if (!ta || !tb || ta - a != tb - b || strncmp(a, b, (size_t)(ta - a)) != 0)
        return 0;
    for (;;) {
        const char *ia = strstr(ta, " AUTO_INCREMENT="), *ib = strstr(tb, " AUTO_INCREMENT=");
        size_t la = ia ? (size_t)(ia - ta) : strlen(ta), lb = ib ? (size_t)(ib - tb) : strlen(tb);
        if (la != lb || strncmp(ta, tb, la) != 0 || !ia != !ib)
            return 0;
        if (!ia)
            return 1;
        ta = ia + 16;
        tb = ib + 16;
        while (*ta >= '0' && *ta <= '9')
            ta++;
        while (*tb >= '0' && *tb <= '9')
            tb++;
    }
}

int sl__dump_recheck(dump *d)
{
    for (size_t i = 0; i < d->ntables; i++) {
        dtable *t = &d->tables[i];
        if (!t->create_sql)
            continue;
        char *now = NULL;
        int rc = read_create(d, t, &now);
        int same = rc == 0 && same_structure(t->create_sql, now);
        free(now);
        if (rc < 0)
            return rc;
        if (!same)
            /* errno 1412 (ER_TABLE_DEF_CHANGED): what MariaDB says of the same race inside a
             * snapshot, and a transient error: the subtask's automatic resume dumps again */
            return d->host->fail(d->ctx, SL_EDB, "source: table `%s`.`%s` changed its structure "
                                 "between the dump reading it and taking its snapshot (a DDL ran "
                                 "meanwhile); nothing was dumped: the dump starts again with a new "
                                 "snapshot (errno 1412)", t->schema, t->name);
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const dtable *x = *(const dtable *const *)a, *y = *(const dtable *const *)b;
    int c = strcmp(x->schema, y->schema);
    return c ? c : strcmp(x->name, y->name);
}

/* The selected table schema.name (index sorted by by_name), or NULL. */
static dtable *find_table(dtable **index, size_t n, const char *schema, const char *name)
{
    if (!name)
        return NULL;
    dtable key = {.schema = (char *)schema, .name = (char *)name}, *kp = &key;
    dtable **f = bsearch(&kp, index, n, sizeof *index, by_name);
    return f ? *f : NULL;
}

/* Rows of a per-schema information_schema query: SQL text with the schema quoted in. */
static MYSQL_RES *schema_query(dump *d, const char *head, const char *schema, const char *tail)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, head);
    sl_sbuf_add_quoted(&b, schema, strlen(schema));
    sl_sbuf_adds(&b, tail);
    if (b.oom) {
        sl_sbuf_free(&b);
        d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        return NULL;
    }
    MYSQL_RES *r = query(d, b.p);
    sl_sbuf_free(&b);
    return r;
}

/*
 * Columns and chosen key of every selected table of one schema: one information_schema.COLUMNS
 * and one STATISTICS query for the whole schema rather than two per table (issue 12: 2,000
 * tables of 1,000 rows spent their time in per-table round trips). Rows are grouped by the
 * exact bytes of TABLE_NAME (ORDER BY BINARY: under the column's case-insensitive collation
 * the rows of `T` and `t` could interleave); tables the task does not select are skipped.
 */
static int describe_schema(dump *d, const char *schema, dtable **index)
{
    MYSQL_RES *r = schema_query(d, "SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, "
                                   "IS_GENERATED, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME "
                                   "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ", schema,
                                " ORDER BY BINARY TABLE_NAME, ORDINAL_POSITION");
    if (!r)
        return SL_EDB;
    MYSQL_ROW row;
    dtable *t = NULL;
    int rc = 0;
    while (rc == 0 && (row = mysql_fetch_row(r))) {
        if (!t || !row[0] || strcmp(t->name, row[0]) != 0)
            t = find_table(index, d->ntables, schema, row[0]);
        if (t)
            rc = add_column(d, t, row + 1);
    }
    mysql_free_result(r);
    if (rc)
        return rc;

    r = schema_query(d, "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE FROM "
                        "information_schema.STATISTICS WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA = ",
                     schema, " ORDER BY BINARY TABLE_NAME, INDEX_NAME <> 'PRIMARY', INDEX_NAME, "
                             "SEQ_IN_INDEX");
    if (!r)
        return SL_EDB;
    /* every selected table of the schema gets its key (or none), rows or not */
    keypick k = {0};
    t = NULL;
    while ((row = mysql_fetch_row(r))) {
        dtable *rt = find_table(index, d->ntables, schema, row[0]);
        if (rt != t) {
            if (t)
                keypick_done(&k, t);
            t = rt;
            memset(&k, 0, sizeof k);
            if (t)
                t->key_read = 1;
        }
        if (t)
            keypick_row(&k, t, row[1], row[2], row[3]);
    }
    if (t)
        keypick_done(&k, t);
    mysql_free_result(r);
    return 0;
}

/*
 * The tables a rule may select: base tables, system-versioned tables (their current rows; the
 * target, created WITH SYSTEM VERSIONING from SHOW CREATE TABLE, starts its own history at the
 * load) and sequences (SHOW CREATE TABLE gives "CREATE TABLE ... SEQUENCE=1", which creates a
 * sequence; its one row, loaded like any other, sets the target's next value to the source's
 * next not-cached value, as a MariaDB replica would). Views are not tables here.
 */
int sl__dump_discover(dump *d)
{
    MYSQL_RES *r = query(d, "SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS, 0), IFNULL(AVG_ROW_LENGTH, 0) "
                            "FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') "
                            "ORDER BY TABLE_SCHEMA, TABLE_NAME");
    if (!r)
        return SL_EDB;
    size_t n = (size_t)mysql_num_rows(r);
    d->tables = calloc(n ? n : 1, sizeof *d->tables);
    if (!d->tables) {
        mysql_free_result(r);
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    }
    MYSQL_ROW row;
    int rc = 0;
    while ((row = mysql_fetch_row(r))) {
        if (is_system_schema(row[0]) || !sl_rules_schema_selected(d->rules, row[0]))
            continue;
        int rule = sl_rules_find(d->rules, row[0], row[1]);
        if (rule < 0)
            continue;
        char real[256];
        if (d->cfg->online_ddl && sl_osc_kind(d->rules, row[0], row[1], real, sizeof real)) {
            /* a migration in flight: its ghost reaches the target as the real table's ALTER at
             * the cut-over (binlog-reader's osc.c), never as a table */
            d->host->log(d->ctx, SL_LOG_INFO, "%s.%s is an online schema change tool's table "
                         "of %s.%s: not copied", row[0], row[1], row[0], real);
            continue;
        }
        dtable *t = &d->tables[d->ntables++];
        t->schema = xstrdup(row[0]);
        t->name = xstrdup(row[1]);
        t->est_rows = strtoull(row[2], NULL, 10);
        t->avg_row = row[3] ? strtoull(row[3], NULL, 10) : 0;
        t->nodata = sl_rules_ignores_event(d->rules, rule, "insert") == 1;
        if (!t->schema || !t->name || add_schema(d, row[0]) < 0) {
            rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory");
            break;
        }
    }
    mysql_free_result(r);
    dtable **index = rc == 0 ? malloc((d->ntables ? d->ntables : 1) * sizeof *index) : NULL;
    if (rc == 0 && !index)
        rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    for (size_t i = 0; rc == 0 && i < d->ntables; i++)
        index[i] = &d->tables[i];
    if (rc == 0)
        qsort(index, d->ntables, sizeof *index, by_name);
    for (size_t i = 0; rc == 0 && i < d->nschemas; i++)
        rc = describe_schema(d, d->schemas[i], index);
    free(index);
    for (size_t i = 0; rc == 0 && i < d->ntables; i++) {
        dtable *t = &d->tables[i];
        if (!t->key_read) {         /* no unique key: no STATISTICS row */
            keypick k = {0};
            keypick_done(&k, t);
        }
        if (!t->cols && !(t->cols = calloc(1, sizeof *t->cols)))
            rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        if (rc == 0)
            rc = read_create(d, t, &t->create_sql);
    }
    for (size_t i = 0; rc == 0 && i < d->nschemas; i++) {
        sl_sbuf b;
        sl_sbuf_init(&b);
        sl_sbuf_adds(&b, "SHOW CREATE DATABASE ");
        sl_sbuf_add_ident(&b, d->schemas[i]);
        r = b.oom ? NULL : query(d, b.p);
        sl_sbuf_free(&b);
        if (!r)
            return SL_EDB;
        row = mysql_fetch_row(r);
        if (row && mysql_num_fields(r) >= 2 && row[1])
            d->schema_sql[i] = add_if_not_exists(row[1], "CREATE DATABASE");
        mysql_free_result(r);
        if (!d->schema_sql[i])
            rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory for CREATE DATABASE %s", d->schemas[i]);
    }
    d->total_tables = d->ntables;
    return rc;
}

/*
 * What a dump does not copy, and why (docs/tasks.md, "What a task copies"):
 *   - TRIGGER and EVENT: with ROW binlogs, the rows they write are logged and replicated as
 *     rows; a copy on the target would run them a second time;
 *   - VIEW, PROCEDURE, FUNCTION (and PACKAGE): definitions, no data; they refer to schemas by
 *     the source's names, which routing may change, and to definers the target may not have.
 * Each selected one is named in a warning in the log and in the dump status (not_copied), which
 * the task's status keeps after the full phase, so a task never finishes silently without it.
 */
int sl__dump_not_copied(dump *d)
{
    MYSQL_RES *r = query(d, "SELECT 'VIEW', TABLE_SCHEMA, TABLE_NAME, TABLE_NAME FROM information_schema.TABLES "
                            "WHERE TABLE_TYPE = 'VIEW' "
                            "UNION ALL SELECT 'TRIGGER', TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE "
                            "FROM information_schema.TRIGGERS "
                            "UNION ALL SELECT ROUTINE_TYPE, ROUTINE_SCHEMA, ROUTINE_NAME, NULL "
                            "FROM information_schema.ROUTINES "
                            "UNION ALL SELECT 'EVENT', EVENT_SCHEMA, EVENT_NAME, NULL FROM information_schema.EVENTS "
                            "ORDER BY 2, 1, 3");
    if (!r)
        return SL_EDB;
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "[");
    size_t n = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r))) {
        if (!row[0] || !row[1] || !row[2] || is_system_schema(row[1]) ||
            !sl_rules_schema_selected(d->rules, row[1]))
            continue;
        /* a view or a trigger goes with its table; routines and events with their schema */
        if (row[3] && sl_rules_find(d->rules, row[1], row[3]) < 0)
            continue;
        n++;
        if (n <= NOT_COPIED_MAX) {
            sl_sbuf tx;
            sl_sbuf_init(&tx);
            sl_sbuf_addf(&tx, "%s ", row[0]);
            sl_sbuf_add_qname(&tx, row[1], row[2]);
            if (!tx.oom) {
                json_t *js = json_string(tx.p);
                char *q = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
                if (q)
                    sl_sbuf_addf(&b, "%s%s", n > 1 ? "," : "", q);
                else
                    b.oom = 1;
                free(q);
                json_decref(js);
                d->host->log(d->ctx, SL_LOG_WARN, "not copied: %s (%s)", tx.p,
                             strcmp(row[0], "TRIGGER") == 0 || strcmp(row[0], "EVENT") == 0
                                 ? "the rows it writes on the source replicate as rows; a copy would apply them twice"
                                 : "a definition without data: create it on the target if it is needed");
            }
            sl_sbuf_free(&tx);
        }
    }
    mysql_free_result(r);
    if (n > NOT_COPIED_MAX)
        d->host->log(d->ctx, SL_LOG_WARN, "not copied: %zu more views, triggers, routines or events",
                     n - NOT_COPIED_MAX);
    sl_sbuf_adds(&b, "]");
    if (b.oom) {
        sl_sbuf_free(&b);
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    }
    pthread_mutex_lock(&d->mu);
    free(d->not_copied);
    d->not_copied = b.p;
    d->n_not_copied = n;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

void sl__i128_str(__int128 v, char *buf)
{
    char tmp[48];
    int neg = v < 0, i = 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
    do {
        tmp[i++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    int o = 0;
    if (neg)
        buf[o++] = '-';
    while (i)
        buf[o++] = tmp[--i];
    buf[o] = '\0';
}

static __int128 parse_i128(const char *s, int is_unsigned)
{
    if (is_unsigned)
        return (__int128)strtoull(s, NULL, 10);
    return (__int128)strtoll(s, NULL, 10);
}

static int push_chunk(dump *d, size_t *cap, size_t ti, size_t n, int has_lo, __int128 lo,
                      int has_hi, __int128 hi)
{
    if (d->nchunks == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        dchunk *v = realloc(d->chunks, nc * sizeof *v);
        if (!v)
            return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        d->chunks = v;
        *cap = nc;
    }
    dchunk *c = &d->chunks[d->nchunks++];
    memset(c, 0, sizeof *c);
    c->table = ti;
    c->n = n;
    c->has_lo = has_lo;
    c->lo = lo;
    c->has_hi = has_hi;
    c->hi = hi;
    dtable *t = &d->tables[ti];
    snprintf(c->id, sizeof c->id, "%s.%s.%zu", t->schema, t->name, n);
    snprintf(c->file, sizeof c->file, "t%05zu.%06zu.tsv", ti, n);
    return 0;
}

/*
 * (k0, .., kn-1) compared with a tuple of literals, written as the disjunction
 *   k0 > l0 OR (k0 = l0 AND k1 > l1) OR ... OR (k0 = l0 AND .. AND kn-1 <last> ln-1)
 * (with < for an upper bound) because the range optimizer turns it into index ranges, while
 * MariaDB 10.11 answers a row-constructor comparison (k0, k1) >= (l0, l1) with a full scan.
 */
static void add_tuple_cmp(sl_sbuf *b, const dtable *t, char **lits, int greater, const char *last)
{
    size_t n = t->nwalk;
    sl_sbuf_adds(b, "(");
    for (size_t i = 0; i < n; i++) {
        sl_sbuf_adds(b, i ? " OR (" : "(");
        for (size_t j = 0; j < i; j++) {
            sl_sbuf_add_ident(b, t->cols[t->pk[j]].name);
            sl_sbuf_adds(b, " = ");
            sl_sbuf_adds(b, lits[j]);
            sl_sbuf_adds(b, " AND ");
        }
        sl_sbuf_add_ident(b, t->cols[t->pk[i]].name);
        sl_sbuf_addf(b, " %s ", i + 1 < n ? (greater ? ">" : "<") : last);
        sl_sbuf_adds(b, lits[i]);
        sl_sbuf_adds(b, ")");
    }
    sl_sbuf_adds(b, ")");
}

static void free_lits(char **lits, size_t n)
{
    if (!lits)
        return;
    for (size_t i = 0; i < n; i++)
        free(lits[i]);
    free(lits);
}

/* The key tuple of the row at OFFSET skip after (>= or >) prev, in key order, as literals in
 * *out (NULL when there is no such row). Returns 0 or a negative code after host->fail. */
static int walk_step(dump *d, const dtable *t, char **prev, const char *op, uint64_t skip, char ***out)
{
    *out = NULL;
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "SELECT ");
    for (size_t i = 0; i < t->nwalk; i++) {
        sl_sbuf_adds(&b, i ? ", " : "");
        sl_sbuf_add_ident(&b, t->cols[t->pk[i]].name);
    }
    sl_sbuf_adds(&b, " FROM ");
    sl_sbuf_add_qname(&b, t->schema, t->name);
    if (prev) {
        sl_sbuf_adds(&b, " WHERE ");
        add_tuple_cmp(&b, t, prev, 1, op);
    }
    sl_sbuf_adds(&b, " ORDER BY ");
    for (size_t i = 0; i < t->nwalk; i++) {
        sl_sbuf_adds(&b, i ? ", " : "");
        sl_sbuf_add_ident(&b, t->cols[t->pk[i]].name);
    }
    sl_sbuf_addf(&b, " LIMIT 1 OFFSET %llu", (unsigned long long)skip);
    MYSQL_RES *r = b.oom ? NULL : query(d, b.p);
    int oom = b.oom;
    sl_sbuf_free(&b);
    if (!r)
        return oom ? d->host->fail(d->ctx, SL_ENOMEM, "no memory") : SL_EDB;
    MYSQL_ROW row = mysql_fetch_row(r);
    unsigned long *len = row ? mysql_fetch_lengths(r) : NULL;
    int rc = 0;
    for (size_t i = 0; row && i < t->nwalk; i++)
        if (!row[i])
            row = NULL;             /* a NULL in the key: stop splitting here */
    if (row) {
        char **lits = calloc(t->nwalk, sizeof *lits);
        for (size_t i = 0; lits && i < t->nwalk; i++) {
            sl_sbuf l;
            sl_sbuf_init(&l);
            add_key_literal(&l, &t->cols[t->pk[i]], row[i], len[i]);
            lits[i] = l.oom ? NULL : l.p;
            if (!lits[i]) {
                sl_sbuf_free(&l);
                free_lits(lits, t->nwalk);
                lits = NULL;
            }
        }
        if (lits)
            *out = lits;
        else
            rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    }
    mysql_free_result(r);
    return rc;
}

static int same_lits(char **a, char **b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static int push_chunk(dump *d, size_t *cap, size_t ti, size_t n, int has_lo, __int128 lo,
                      int has_hi, __int128 hi);

/*
 * Split a table on its key (t->nwalk leading columns) by walking it in index order: each boundary
 * is the key of the row chunk_rows rows after the previous boundary (LIMIT 1 OFFSET, one index
 * range read per chunk, so the whole walk reads the index once). Boundaries are read outside the
 * snapshot: they only need to partition the key space, which ranges open at both ends always do.
 * At most max_chunks chunks; the last one takes whatever is left.
 */
static int walk_chunks(dump *d, size_t *cap, size_t ti, uint64_t per, size_t max_chunks)
{
    dtable *t = &d->tables[ti];
    char **prev = NULL, **first = NULL;
    size_t n = 0;
    /* The smallest key: a boundary equal to it would make an empty first chunk. */
    int rc = walk_step(d, t, NULL, ">=", 0, &first);
    while (rc == 0 && first && n + 1 < max_chunks) {
        if (d->host->should_stop(d->ctx)) {
            rc = SL_ESTOPPED;
            break;
        }
        char **next = NULL;
        if ((rc = walk_step(d, t, prev, ">=", per, &next)) < 0)
            break;
        char **base = prev ? prev : first;
        if (next && same_lits(next, base, t->nwalk)) {
            /* The leading columns of a composite key repeat over more than chunk_rows rows:
             * the next boundary is the next distinct value. */
            free_lits(next, t->nwalk);
            if ((rc = walk_step(d, t, base, ">", 0, &next)) < 0)
                break;
        }
        if (!next)
            break;
        sl_sbuf w;
        sl_sbuf_init(&w);
        if (prev) {
            add_tuple_cmp(&w, t, prev, 1, ">=");
            sl_sbuf_adds(&w, " AND ");
        }
        add_tuple_cmp(&w, t, next, 0, "<");
        if (w.oom || push_chunk(d, cap, ti, n, 0, 0, 0, 0) < 0) {
            sl_sbuf_free(&w);
            free_lits(next, t->nwalk);
            rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory");
            break;
        }
        d->chunks[d->nchunks - 1].where = w.p;
        n++;
        free_lits(prev, t->nwalk);
        prev = next;
    }
    if (rc == 0) {
        sl_sbuf w;
        sl_sbuf_init(&w);
        if (prev)
            add_tuple_cmp(&w, t, prev, 1, ">=");
        if (w.oom || push_chunk(d, cap, ti, n, 0, 0, 0, 0) < 0) {
            sl_sbuf_free(&w);
            rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        } else {
            d->chunks[d->nchunks - 1].where = prev ? w.p : NULL;
            if (!prev)
                sl_sbuf_free(&w);
        }
    }
    free_lits(prev, t->nwalk);
    free_lits(first, t->nwalk);
    return rc;
}

/*
 * Rows per chunk of a table: chunk_rows, fewer when that many rows would make more than
 * chunk_bytes (by the table's AVG_ROW_LENGTH). A chunk is one transaction in the target: its size
 * bounds the undo a rollback must walk and the locks it holds while it does (issue 12: a killed
 * 100,000-row chunk of wide rows rolled back for 140 s while new loads piled onto its locks).
 * Never fewer than 1,000 rows, so a table of huge rows does not become a million statements.
 */
static uint64_t rows_per_chunk(const dump *d, const dtable *t)
{
    uint64_t per = (uint64_t)(d->cfg->chunk_rows > 0 ? d->cfg->chunk_rows : 100000);
    if (d->cfg->chunk_bytes > 0 && t->avg_row > 0) {
        uint64_t by_bytes = (uint64_t)d->cfg->chunk_bytes / t->avg_row;
        if (by_bytes < 1000)
            by_bytes = 1000;
        if (by_bytes < per)
            per = by_bytes;
    }
    return per;
}

int sl__dump_plan_chunks(dump *d)
{
    size_t cap = 0;
    int walk_binary = 0;
    for (size_t ti = 0; ti < d->ntables; ti++) {
        dtable *t = &d->tables[ti];
        t->first_chunk = d->nchunks;
        t->serial = t->create_sql && sl_ddl_has_autoinc(t->create_sql);
        d->est_total_rows += t->nodata ? 0 : t->est_rows;
        if (t->nodata)
            continue;
        uint64_t per = rows_per_chunk(d, t);
        size_t want = (t->chunk_col >= 0 || t->nwalk) && t->est_rows > per ?
                      (size_t)((t->est_rows + per - 1) / per) : 1;
        if (want > 1 && t->nwalk) {
            /* Key values are read as bytes (quoted back with the column's charset). The row
             * estimate can be far off: walk up to 4x as many chunks as it suggests. */
            if (!walk_binary) {
                if (sl__dump_exec(d, d->main, "SET SESSION character_set_results = binary") < 0)
                    return SL_EDB;
                walk_binary = 1;
            }
            int rc = walk_chunks(d, &cap, ti, per, want * 4 + 16);
            if (rc < 0)
                return rc;
            t->nchunks = d->nchunks - t->first_chunk;
            continue;
        }
        if (want > 1) {
            sl_sbuf b;
            sl_sbuf_init(&b);
            sl_sbuf_adds(&b, "SELECT MIN(");
            sl_sbuf_add_ident(&b, t->cols[t->chunk_col].name);
            sl_sbuf_adds(&b, "), MAX(");
            sl_sbuf_add_ident(&b, t->cols[t->chunk_col].name);
            sl_sbuf_adds(&b, ") FROM ");
            sl_sbuf_add_qname(&b, t->schema, t->name);
            MYSQL_RES *r = b.oom ? NULL : query(d, b.p);
            sl_sbuf_free(&b);
            if (!r)
                return SL_EDB;
            MYSQL_ROW row = mysql_fetch_row(r);
            if (!row || !row[0] || !row[1]) {
                want = 1;           /* empty after all */
            } else {
                __int128 lo = parse_i128(row[0], t->chunk_unsigned);
                __int128 hi = parse_i128(row[1], t->chunk_unsigned);
                __int128 span = hi - lo + 1;
                if (span < (__int128)want)
                    want = (size_t)(span > 0 ? span : 1);
                __int128 step = span / (__int128)want + (span % (__int128)want ? 1 : 0);
                for (size_t i = 0; i < want; i++) {
                    __int128 a = lo + step * (__int128)i, z = a + step;
                    if (push_chunk(d, &cap, ti, i, i > 0, a, i + 1 < want, z) < 0) {
                        mysql_free_result(r);
                        return SL_ENOMEM;
                    }
                }
            }
            mysql_free_result(r);
        }
        if (want <= 1 && push_chunk(d, &cap, ti, 0, 0, 0, 0, 0) < 0)
            return SL_ENOMEM;
        t->nchunks = d->nchunks - t->first_chunk;
    }
    if (walk_binary && sl__dump_exec(d, d->main, "SET SESSION character_set_results = "
                                                 "@@character_set_client") < 0)
        return SL_EDB;
    return 0;
}

void sl__dump_free_plan(dump *d)
{
    for (size_t i = 0; i < d->ntables; i++) {
        dtable *t = &d->tables[i];
        for (size_t c = 0; c < t->ncols; c++) {
            free(t->cols[c].name);
            free(t->cols[c].data_type);
            free(t->cols[c].type_text);
            free(t->cols[c].charset);
        }
        free(t->cols);
        free(t->schema);
        free(t->name);
        free(t->create_sql);
        if (t->meta)
            d->host->table_unref(t->meta);
    }
    free(d->tables);
    for (size_t i = 0; i < d->nschemas; i++) {
        free(d->schemas[i]);
        free(d->schema_sql[i]);
    }
    free(d->schemas);
    free(d->schema_sql);
    for (size_t i = 0; i < d->nchunks; i++)
        free(d->chunks[i].where);
    free(d->chunks);
    free(d->done_ring);
    for (size_t i = 0; i < d->ncolls; i++)
        free(d->colls[i].name);
    free(d->colls);
    d->colls = NULL;
    d->ncolls = 0;
    d->colls_read = 0;
    d->tables = NULL;
    d->ntables = 0;
    d->schemas = d->schema_sql = NULL;
    d->nschemas = 0;
    d->chunks = NULL;
    d->nchunks = 0;
    d->done_ring = NULL;
}
