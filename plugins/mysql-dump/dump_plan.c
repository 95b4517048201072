/*
 * dump_plan.c - what a dump reads: the base tables the task's rules select, their columns (minus
 * generated ones), the key chunks split on, CREATE statements, and the chunk plan (integer key
 * ranges sized by chunk_rows from the table's row estimate, open at both ends).
 */
#include "dump.h"

#include <ctype.h>
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
        {"inet6", MYSQL_TYPE_STRING}, {"uuid", MYSQL_TYPE_STRING},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcasecmp(dt, m[i].n) == 0)
            return m[i].t;
    return MYSQL_TYPE_STRING;
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

/* Columns, chosen key and CREATE TABLE of one table. */
static int describe_table(dump *d, dtable *t)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, IS_GENERATED, IS_NULLABLE "
                     "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ");
    sl_sbuf_add_quoted(&b, t->schema, strlen(t->schema));
    sl_sbuf_adds(&b, " AND TABLE_NAME = ");
    sl_sbuf_add_quoted(&b, t->name, strlen(t->name));
    sl_sbuf_adds(&b, " ORDER BY ORDINAL_POSITION");
    if (b.oom) {
        sl_sbuf_free(&b);
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    }
    MYSQL_RES *r = query(d, b.p);
    if (!r) {
        sl_sbuf_free(&b);
        return SL_EDB;
    }
    size_t n = (size_t)mysql_num_rows(r);
    t->cols = calloc(n ? n : 1, sizeof *t->cols);
    if (!t->cols) {
        mysql_free_result(r);
        sl_sbuf_free(&b);
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    }
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r))) {
        if (row[3] && strcmp(row[3], "NEVER") != 0)
            continue;               /* generated: computed by the target */
        dcol *c = &t->cols[t->ncols++];
        c->name = xstrdup(row[0]);
        c->data_type = xstrdup(row[1]);
        c->type_text = xstrdup(row[2]);
        c->mysql_type = mysql_type_of(row[1]);
        if (row[2] && strstr(row[2], "unsigned"))
            c->flags |= SL_COL_UNSIGNED;
        if (row[4] && strcmp(row[4], "YES") == 0)
            c->flags |= SL_COL_NULLABLE;
        if (!c->name || !c->data_type || !c->type_text) {
            mysql_free_result(r);
            sl_sbuf_free(&b);
            return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        }
    }
    mysql_free_result(r);

    /* The primary key, else the first unique key whose columns are all NOT NULL. */
    sl_sbuf_reset(&b);
    sl_sbuf_adds(&b, "SELECT INDEX_NAME, COLUMN_NAME, NULLABLE FROM information_schema.STATISTICS "
                     "WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA = ");
    sl_sbuf_add_quoted(&b, t->schema, strlen(t->schema));
    sl_sbuf_adds(&b, " AND TABLE_NAME = ");
    sl_sbuf_add_quoted(&b, t->name, strlen(t->name));
    sl_sbuf_adds(&b, " ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX");
    int oom = b.oom;
    r = oom ? NULL : query(d, b.p);
    if (!r) {
        sl_sbuf_free(&b);
        return oom ? d->host->fail(d->ctx, SL_ENOMEM, "no memory") : SL_EDB;
    }
    char cur[256] = "";
    int chosen = 0, bad = 0;
    uint32_t cand[16];
    size_t ncand = 0;
    while ((row = mysql_fetch_row(r)) && !chosen) {
        if (strcmp(cur, row[0]) != 0) {
            if (cur[0] && !bad && ncand) {
                chosen = 1;
                break;
            }
            snprintf(cur, sizeof cur, "%s", row[0]);
            bad = 0;
            ncand = 0;
        }
        if (row[2] && strcmp(row[2], "YES") == 0)
            bad = 1;
        int found = -1;
        for (size_t i = 0; i < t->ncols; i++)
            if (strcasecmp(t->cols[i].name, row[1]) == 0)
                found = (int)i;
        if (found < 0 || ncand == 16)
            bad = 1;                 /* a generated column in the key, or too wide a key */
        else
            cand[ncand++] = (uint32_t)found;
    }
    if (!chosen && cur[0] && !bad && ncand)
        chosen = 1;
    mysql_free_result(r);
    t->chunk_col = -1;
    if (chosen) {
        t->npk = ncand;
        memcpy(t->pk, cand, ncand * sizeof cand[0]);
        for (size_t i = 0; i < ncand; i++)
            t->cols[cand[i]].flags |= SL_COL_PK;
        if (is_int_type(t->cols[cand[0]].mysql_type)) {
            t->chunk_col = (int)cand[0];
            t->chunk_unsigned = (t->cols[cand[0]].flags & SL_COL_UNSIGNED) != 0;
        }
    }

    sl_sbuf_reset(&b);
    sl_sbuf_adds(&b, "SHOW CREATE TABLE ");
    sl_sbuf_add_qname(&b, t->schema, t->name);
    r = b.oom ? NULL : query(d, b.p);
    sl_sbuf_free(&b);
    if (!r)
        return SL_EDB;
    row = mysql_fetch_row(r);
    if (!row || mysql_num_fields(r) < 2 || !row[1]) {
        mysql_free_result(r);
        return d->host->fail(d->ctx, SL_EDB, "source: SHOW CREATE TABLE %s.%s gave nothing",
                             t->schema, t->name);
    }
    t->create_sql = add_if_not_exists(row[1], "CREATE TABLE");
    mysql_free_result(r);
    return t->create_sql ? 0 : d->host->fail(d->ctx, SL_ENOMEM, "no memory");
}

int sl__dump_discover(dump *d)
{
    MYSQL_RES *r = query(d, "SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS, 0) "
                            "FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' "
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
        dtable *t = &d->tables[d->ntables++];
        t->schema = xstrdup(row[0]);
        t->name = xstrdup(row[1]);
        t->est_rows = strtoull(row[2], NULL, 10);
        t->nodata = sl_rules_ignores_event(d->rules, rule, "insert") == 1;
        if (!t->schema || !t->name || add_schema(d, row[0]) < 0) {
            rc = d->host->fail(d->ctx, SL_ENOMEM, "no memory");
            break;
        }
    }
    mysql_free_result(r);
    for (size_t i = 0; rc == 0 && i < d->ntables; i++)
        rc = describe_table(d, &d->tables[i]);
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

int sl__dump_plan_chunks(dump *d)
{
    size_t cap = 0;
    uint64_t per = (uint64_t)(d->cfg->chunk_rows > 0 ? d->cfg->chunk_rows : 100000);
    for (size_t ti = 0; ti < d->ntables; ti++) {
        dtable *t = &d->tables[ti];
        t->first_chunk = d->nchunks;
        d->est_total_rows += t->nodata ? 0 : t->est_rows;
        if (t->nodata)
            continue;
        size_t want = t->chunk_col >= 0 && t->est_rows > per ? (size_t)((t->est_rows + per - 1) / per) : 1;
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
    free(d->chunks);
    free(d->done_ring);
    d->tables = NULL;
    d->ntables = 0;
    d->schemas = d->schema_sql = NULL;
    d->nschemas = 0;
    d->chunks = NULL;
    d->nchunks = 0;
    d->done_ring = NULL;
}
