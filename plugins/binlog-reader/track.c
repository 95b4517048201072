/*
 * track.c - the binlog-reader's schema tracker: the structure of every selected table as of the
 * reader's position, kept as empty shadow tables on the target (strack.h: MariaDB parses the
 * DDL), persisted as versions keyed by binlog position, and used to decode table maps that carry
 * no column names (binlog_row_metadata=MINIMAL) or checked against those that do.
 *
 * Persistence. Each structure change is a row (source, schema, table, binlog_name, binlog_pos,
 * create_sql; NULL = dropped) of `<meta_schema>`.`<task>_schema_tracker`, written before the DDL
 * event leaves the reader. A version counts only once the syncer checkpoint row is at or past
 * its position, so the structure a resume uses is a function of the checkpoint row alone, and
 * that row is what the sink commits atomically with the rows (and after each DDL): a kill -9 at
 * any point resumes with the structures of the checkpoint's position. On start the versions
 * after the checkpoint (a DDL read but not applied) are deleted and re-made when the binlog is
 * read again; versions older than the latest one at or before the checkpoint are pruned, so the
 * table holds one row per table plus the DDLs in flight.
 *
 * Shadow schemas are named "_sl_st_<hash(task/source)>_<hash(schema)>" so that one subtask's
 * shadows can be found (and dropped, then restored from the versions) by prefix.
 */
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <mysqld_error.h>

#include "ckpt.h"
#include "ddl.h"
#include "strack.h"

/* The tracker's sessions (shadows on the target, the seed's SHOW CREATE TABLE on the source) in
 * a known sql_mode, not the server's global one: a DDL runs in the default mode unless its event
 * says otherwise (sl_event.ddl_mode), and SHOW CREATE TABLE prints backticks and every option
 * (ANSI_QUOTES, NO_TABLE_OPTIONS... would change the text the tracker persists and parses). */
#define TRACK_SESSION "SET SESSION sql_mode = ''"

typedef struct br_shadow {
    char             *schema;    /* source schema */
    char             *shadow;    /* its shadow schema on the target */
    int               created;   /* CREATE DATABASE IF NOT EXISTS ran in this run */
    struct br_shadow *next;
} br_shadow;

/* One tracked column, as information_schema.COLUMNS of the shadow says. */
typedef struct br_tcol {
    char     *name;
    char     *column_type;      /* "int(10) unsigned", "enum('a','b')" */
    char     *data_type;        /* "int", "varchar", "enum": the type without its arguments */
    int64_t   octets;           /* CHARACTER_OCTET_LENGTH, -1 if NULL */
    int64_t   prec, scale;      /* NUMERIC_PRECISION, NUMERIC_SCALE, -1 if NULL */
    int64_t   dtprec;           /* DATETIME_PRECISION, -1 if NULL */
    uint16_t  collation;        /* 0 for non-character columns */
    uint8_t   is_unsigned, pk;
} br_tcol;

typedef struct br_tcols {
    uint32_t  n;
    br_tcol  *c;
    uint32_t  npk;
    uint32_t *pk;
} br_tcols;

static uint32_t fnv(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static int fail(sl_error *err, MYSQL *db, const char *what)
{
    unsigned e = mysql_errno(db);
    return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                        "schema tracker: %s: %s (errno %u)", what, mysql_error(db), e);
}

/* ---- names ------------------------------------------------------------------------------- */

static br_shadow *shadow_of(br *r, const char *schema)
{
    for (br_shadow *s = r->shadows; s; s = s->next)
        if (!strcmp(s->schema, schema))
            return s;
    br_shadow *s = calloc(1, sizeof *s);
    char name[64];
    snprintf(name, sizeof name, "%s%08x", r->shadow_prefix, fnv(2166136261u, schema));
    if (!s || !(s->schema = strdup(schema)) || !(s->shadow = strdup(name))) {
        if (s)
            free(s->schema);
        free(s);
        return NULL;
    }
    s->next = r->shadows;
    r->shadows = s;
    return s;
}

/* sl_ddl_map_fn: a source table to its shadow (same table name, in its schema's shadow). */
static void map_shadow(void *ud, const char *schema, const char *table, const char **tschema,
                       const char **ttable)
{
    br_shadow *s = shadow_of(ud, schema);
    *tschema = s ? s->shadow : NULL;
    *ttable = table;
}

static int ensure_shadow(br *r, const char *schema, sl_error *err)
{
    br_shadow *s = shadow_of(r, schema);
    if (!s)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    if (s->created)
        return 0;
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "CREATE DATABASE IF NOT EXISTS ");
    sl_sbuf_add_ident(&q, s->shadow);
    int rc = q.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                   : sl_myconn_exec(r->tdb, q.p, q.len, err);
    sl_sbuf_free(&q);
    if (rc == 0)
        s->created = 1;
    return rc;
}

static void add_table(br *r, sl_sbuf *b)
{
    sl_strack_versions_name(b, r->cfg->meta_schema, r->cfg->task_name);
}

static void add_str(sl_sbuf *b, const char *s)
{
    sl_sbuf_add_quoted(b, s, strlen(s));
}

/* Run the query in b (freed), with the error named by what. */
static int run(br *r, sl_sbuf *b, const char *what, sl_error *err)
{
    int rc;
    if (b->oom)
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    else if (mysql_real_query(r->tdb, b->p, (unsigned long)b->len) != 0)
        rc = fail(err, r->tdb, what);
    else
        rc = 0;
    sl_sbuf_free(b);
    return rc;
}

/* Persist create (NULL: the table no longer exists) as schema.table's version at file:pos. */
static int persist(br *r, const char *schema, const char *table, const char *file,
                   uint64_t pos, const char *create, sl_error *err)
{
    return sl_strack_version_put(r->tdb, r->cfg->meta_schema, r->cfg->task_name,
                                 r->cfg->source_name, schema, table, file, pos, create, err);
}

/* ---- start: restore or seed --------------------------------------------------------------- */

static int drop_shadows(br *r, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "
                     "LEFT(SCHEMA_NAME, ");
    sl_sbuf_addf(&q, "%zu) = ", strlen(r->shadow_prefix));
    add_str(&q, r->shadow_prefix);
    int rc = run(r, &q, "listing shadow schemas", err);
    if (rc < 0)
        return rc;
    MYSQL_RES *res = mysql_store_result(r->tdb);
    if (!res)
        return fail(err, r->tdb, "listing shadow schemas");
    MYSQL_ROW row;
    while (rc == 0 && (row = mysql_fetch_row(res))) {
        sl_sbuf d;
        sl_sbuf_init(&d);
        sl_sbuf_adds(&d, "DROP DATABASE IF EXISTS ");
        sl_sbuf_add_ident(&d, row[0]);
        rc = run(r, &d, "dropping a shadow schema", err);
    }
    mysql_free_result(res);
    for (br_shadow *s = r->shadows; s; s = s->next)
        s->created = 0;
    return rc;
}

/* Restore one table's structure into its shadow. */
static int restore(br *r, const char *schema, const char *table, const char *create,
                   sl_error *err)
{
    int rc = ensure_shadow(r, schema, err);
    if (rc == 0)
        rc = sl_strack_replace(r->tdb, schema, table, create, strlen(create), 0, map_shadow, r,
                               NULL, err);
    return rc;
}

/* The versions table's rows that are table structures; the others (schema and table '') are
 * the position of the source at a seed from it, see seed_from_source. */
#define SEED_MARK "schema_name = '' AND table_name = ''"
#define NOT_SEED_MARK "table_name <> ''"

/* Seed every selected table from the live source: SHOW CREATE TABLE there, persisted at the
 * start position, and the source's position at that moment (a row SEED_MARK). */
static int seed_from_source(br *r, sl_error *err)
{
    sl_myconn_opts o = { SL_MYCONN_FROM(r->cfg, source), .init_sql = TRACK_SESSION };
    MYSQL *src = sl_myconn_open(&o, err);
    if (!src)
        return err->code ? err->code : SL_ECONN;
    int rc = 0;
    /* Where the source is while it is seeded: DDLs read before this position may already be
     * part of the seed (see br_track_ddl). */
    if (mysql_query(src, "SHOW MASTER STATUS") == 0) {
        MYSQL_RES *res = mysql_store_result(src);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        if (row && row[0] && row[1]) {
            snprintf(r->seed_file, sizeof r->seed_file, "%s", row[0]);
            r->seed_pos = strtoull(row[1], NULL, 10);
        }
        if (res)
            mysql_free_result(res);
    }
    const char *list = "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE "
                       "TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA NOT IN "
                       "('mysql', 'information_schema', 'performance_schema', 'sys')";
    if (mysql_query(src, list) != 0) {
        rc = fail(err, src, "listing the source's tables");
        mysql_close(src);
        return rc;
    }
    MYSQL_RES *tabs = mysql_store_result(src);
    if (!tabs) {
        rc = fail(err, src, "listing the source's tables");
        mysql_close(src);
        return rc;
    }
    MYSQL_ROW row;
    int n = 0;
    while (rc == 0 && (row = mysql_fetch_row(tabs))) {
        if (sl_rules_find(r->rules, row[0], row[1]) < 0 || br_osc_table(r, row[0], row[1]))
            continue;     /* unselected, or an online schema change tool's table (osc.c) */
        sl_sbuf q;
        sl_sbuf_init(&q);
        sl_sbuf_adds(&q, "SHOW CREATE TABLE ");
        sl_sbuf_add_qname(&q, row[0], row[1]);
        if (q.oom || mysql_real_query(src, q.p, (unsigned long)q.len) != 0) {
            sl_sbuf_free(&q);
            if (mysql_errno(src) == ER_NO_SUCH_TABLE)
                continue;     /* dropped since it was listed */
            rc = fail(err, src, "SHOW CREATE TABLE on the source");
            break;
        }
        sl_sbuf_free(&q);
        MYSQL_RES *cr = mysql_store_result(src);
        MYSQL_ROW c = cr ? mysql_fetch_row(cr) : NULL;
        if (!c || !c[1]) {
            if (cr)
                mysql_free_result(cr);
            rc = fail(err, src, "SHOW CREATE TABLE on the source");
            break;
        }
        rc = restore(r, row[0], row[1], c[1], err);
        if (rc == 0)
            rc = persist(r, row[0], row[1], r->commit_file, r->commit_pos, c[1], err);
        mysql_free_result(cr);
        n++;
    }
    mysql_free_result(tabs);
    mysql_close(src);
    /* The source's position at the seed, for a restart before the sink's first checkpoint that
     * keeps this seed (br_track_start): a row with no schema and no table (SEED_MARK). */
    if (rc == 0 && r->seed_file[0])
        rc = persist(r, "", "", r->seed_file, r->seed_pos, NULL, err);
    if (rc == 0)
        r->host->log(r->ctx, SL_LOG_INFO, "schema tracker: %d table(s) seeded from the source "
                     "(at its position (%s, %llu))", n, r->seed_file,
                     (unsigned long long)r->seed_pos);
    return rc;
}

/* "(binlog_name, binlog_pos) > (file, pos)" */
/* "(binlog_name OP 'file' OR (binlog_name = 'file' AND binlog_pos OP pos))": the rows of a
 * position-versioned table (the tracker's, online DDL's) after ('>') or before ('<') a position. */
void br_sql_pos_cmp(sl_sbuf *q, const char *op, const char *file, uint64_t pos)
{
    sl_sbuf_addf(q, "(binlog_name %s ", op);
    add_str(q, file);
    sl_sbuf_adds(q, " OR (binlog_name = ");
    add_str(q, file);
    sl_sbuf_addf(q, " AND binlog_pos %s %llu))", op, (unsigned long long)pos);
}

/* " WHERE source_name = 'source' AND k1 = 'v1' AND k2 = 'v2' AND <before file:pos>": the older
 * versions of one object, which the newest version at or before the checkpoint replaces. */
void br_sql_older_versions(sl_sbuf *q, const char *source, const char *k1, const char *v1,
                           const char *k2, const char *v2, const char *file, uint64_t pos)
{
    sl_sbuf_adds(q, " WHERE source_name = ");
    add_str(q, source);
    sl_sbuf_addf(q, " AND %s = ", k1);
    add_str(q, v1);
    sl_sbuf_addf(q, " AND %s = ", k2);
    add_str(q, v2);
    sl_sbuf_adds(q, " AND ");
    br_sql_pos_cmp(q, "<", file, pos);
}

static void forget_tcols(br *r)
{
    for (int i = 0; i < BR_TABLE_BUCKETS; i++)
        for (br_table *t = r->tables[i]; t; t = t->next) {
            br_track_tcols_free(t->tcols);
            t->tcols = NULL;
            /* a table map with the same bytes may now mean other names */
            sl_bl_table_map_free(t->map);
            t->map = NULL;
        }
}

/* The shadow schemas of this subtask are named _sl_st_<hash(task/source)>_...: found by prefix. */
static void set_shadow_prefix(br *r)
{
    const br_cfg *c = r->cfg;
    snprintf(r->shadow_prefix, sizeof r->shadow_prefix, "_sl_st_%08x_",
             fnv(fnv(2166136261u, c->task_name) * 16777619u ^ '/', c->source_name));
}

/* The source's position at the seed restored (a SEED_MARK row left after the checkpoint): DDLs
 * read before it may already be in the seed (br_track_ddl), full table maps are not checked. */
static int read_seed_mark(br *r, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT binlog_name, binlog_pos FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, r->cfg->source_name);
    sl_sbuf_adds(&q, " AND " SEED_MARK " ORDER BY binlog_name DESC, binlog_pos DESC LIMIT 1");
    int rc = run(r, &q, "reading the seed's position", err);
    if (rc < 0)
        return rc;
    MYSQL_RES *res = mysql_store_result(r->tdb);
    if (!res)
        return fail(err, r->tdb, "reading the seed's position");
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row && row[0] && row[1]) {
        snprintf(r->seed_file, sizeof r->seed_file, "%s", row[0]);
        r->seed_pos = strtoull(row[1], NULL, 10);
    }
    mysql_free_result(res);
    return 0;
}

int br_track_start(br *r, sl_error *err)
{
    const br_cfg *c = r->cfg;
    set_shadow_prefix(r);
    r->seed_file[0] = '\0';
    r->seed_pos = 0;
    forget_tcols(r);
    if (!r->tdb) {
        sl_myconn_opts o = { SL_MYCONN_FROM(c, target), .init_sql = TRACK_SESSION };
        if (!(r->tdb = sl_myconn_open(&o, err)))
            return err->code ? err->code : SL_ECONN;
    }
    int rc = sl_strack_versions_create(r->tdb, c->meta_schema, c->task_name, err);
    if (rc < 0)
        return rc;
    /* Versions after the resume position belong to DDLs that will be read again. Before the
     * sink's first checkpoint (none, or the loader's snapshot one) only the versions at the
     * start position stay: those of the seed (from the source, or mysql-dump's structures of
     * the snapshot the target was loaded from, which a seed from the source now might not be:
     * a DDL between the snapshot and this start has rows before it in the snapshot's shape),
     * as corrected by a PUT (a seed from the source is the source as it is, which rows before a
     * later DDL may not match: br_track_fill pauses, and the PUT repairs the seed). The others
     * are DDLs read again, or an earlier incarnation of the task at another position. The
     * seed marker stays while the checkpoint is before it (the seed's window, below). */
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "DELETE FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, c->source_name);
    if (!r->track_fresh) {
        sl_sbuf_adds(&q, " AND " NOT_SEED_MARK " AND ");
        br_sql_pos_cmp(&q, ">", r->commit_file, r->commit_pos);
        sl_sbuf_adds(&q, " OR source_name = ");
        add_str(&q, c->source_name);
        sl_sbuf_adds(&q, " AND " SEED_MARK " AND NOT ");
        br_sql_pos_cmp(&q, ">", r->commit_file, r->commit_pos);
    } else {
        sl_sbuf_adds(&q, r->track_snapshot ? " AND NOT (" NOT_SEED_MARK " AND binlog_name = "
                                           : " AND " NOT_SEED_MARK " AND NOT (binlog_name = ");
        add_str(&q, r->commit_file);
        sl_sbuf_addf(&q, " AND binlog_pos = %llu)", (unsigned long long)r->commit_pos);
    }
    if ((rc = run(r, &q, "forgetting versions after the checkpoint", err)) < 0)
        return rc;
    if ((rc = drop_shadows(r, err)) < 0)
        return rc;

    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT schema_name, table_name, binlog_name, binlog_pos, create_sql FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, c->source_name);
    sl_sbuf_adds(&q, " AND " NOT_SEED_MARK);
    sl_sbuf_adds(&q, " ORDER BY schema_name, table_name, binlog_name DESC, binlog_pos DESC");
    if ((rc = run(r, &q, "reading the tracked structures", err)) < 0)
        return rc;
    MYSQL_RES *res = mysql_store_result(r->tdb);
    if (!res)
        return fail(err, r->tdb, "reading the tracked structures");
    MYSQL_ROW row;
    char last_s[256] = "", last_t[256] = "";
    int have = 0, n = 0;
    while (rc == 0 && (row = mysql_fetch_row(res))) {
        have = 1;
        if (!strcmp(row[0], last_s) && !strcmp(row[1], last_t))
            continue;     /* an older version of the table just restored */
        snprintf(last_s, sizeof last_s, "%s", row[0]);
        snprintf(last_t, sizeof last_t, "%s", row[1]);
        /* a table no rule selects (any more) is not tracked: its DDL is not followed */
        if (row[4] && sl_rules_find(r->rules, row[0], row[1]) >= 0) {
            rc = restore(r, row[0], row[1], row[4], err);
            n++;
        }
        if (rc == 0) {
            sl_sbuf d;
            sl_sbuf_init(&d);
            sl_sbuf_adds(&d, "DELETE FROM ");
            add_table(r, &d);
            br_sql_older_versions(&d, c->source_name, "schema_name", row[0], "table_name", row[1],
                                  row[2], strtoull(row[3], NULL, 10));
            rc = run(r, &d, "pruning old versions", err);
        }
    }
    mysql_free_result(res);
    if (rc < 0)
        return rc;
    if (have) {
        if ((rc = read_seed_mark(r, err)) < 0)
            return rc;
        r->host->log(r->ctx, SL_LOG_INFO, "schema tracker: %d table structure(s) restored as of "
                     "(%s, %llu)%s", n, r->commit_file, (unsigned long long)r->commit_pos,
                     r->track_snapshot ? " (the dump's snapshot)"
                     : r->seed_file[0] ? " (a seed from the source)" : "");
        return 0;
    }
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "DELETE FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, c->source_name);
    sl_sbuf_adds(&q, " AND " SEED_MARK);
    if ((rc = run(r, &q, "forgetting an earlier seed", err)) < 0)
        return rc;
    return seed_from_source(r, err);
}

/* ---- DDL ---------------------------------------------------------------------------------- */

/* The server errors of a DDL whose effect a seed taken after it already holds. */
static int already_in_seed(unsigned e)
{
    return e == ER_TABLE_EXISTS_ERROR || e == ER_BAD_TABLE_ERROR || e == ER_NO_SUCH_TABLE ||
           e == ER_DUP_FIELDNAME || e == ER_CANT_DROP_FIELD_OR_KEY || e == ER_BAD_FIELD_ERROR ||
           e == ER_DUP_KEYNAME;
}

static int pos_before(const char *f1, uint64_t p1, const char *f2, uint64_t p2)
{
    int c = strcmp(f1, f2);
    return c < 0 || (c == 0 && p1 < p2);
}

/* 1 when the statement renames a table that no rule selects into the selection: RENAME TABLE
 * with such a pair (its old name not made by an earlier pair of the statement), or ALTER TABLE
 * ... RENAME TO of such a table. */
static int renamed_in(br *r, const sl_ddl *d)
{
    if (d->kind == SL_DDL_ALTER_TABLE && d->nnames == 2)
        return sl_rules_find(r->rules, d->names[0].schema, d->names[0].table) < 0;
    if (d->kind != SL_DDL_RENAME_TABLE)
        return 0;
    for (size_t i = 0; i + 1 < d->nnames; i += 2) {
        const sl_ddl_name *from = &d->names[i];
        int made = 0;
        for (size_t k = 1; k < i; k += 2)
            made |= !strcmp(d->names[k].schema, from->schema) &&
                    !strcmp(d->names[k].table, from->table);
        if (!made && sl_rules_find(r->rules, from->schema, from->table) < 0)
            return 1;
    }
    return 0;
}

/* A table renamed into the selection from a name no rule selects is not tracked: the tracker
 * never followed it (or stopped when it left the selection), and a structure it kept would be
 * stale. The statement is applied pair by pair: the others move their shadows; such a table's
 * new name has none (rows of it then decode from full metadata, or pause in br_track_fill for a
 * PUT). An ALTER ... RENAME of such a table is not applied at all. */
static int apply_renames(br *r, const sl_ddl *d, const char *sql, size_t len, sl_error *err)
{
    int rc = 0;
    size_t step = d->kind == SL_DDL_RENAME_TABLE ? 2 : d->nnames;
    for (size_t i = 0; rc == 0 && i + 1 < d->nnames; i += step) {
        const sl_ddl_name *from = &d->names[i], *to = &d->names[i + 1];
        int made = 0;
        for (size_t k = 1; k < i; k += 2)
            made |= !strcmp(d->names[k].schema, from->schema) &&
                    !strcmp(d->names[k].table, from->table);
        if (!made && sl_rules_find(r->rules, from->schema, from->table) < 0) {
            /* The new name cannot exist on the source before the RENAME: a structure the
             * tracker has for it was given by a PUT after the pause below, on a restart that
             * reads this statement again. It is the one to keep. */
            br_shadow *sh = shadow_of(r, to->schema);
            char *create = NULL;
            int have = sh ? sl_strack_show(r->tdb, sh->shadow, to->table, &create, err) : SL_ENOMEM;
            free(create);
            if (have < 0 && have != SL_ENOENT)
                return have;
            memset(err, 0, sizeof *err);
            r->host->log(r->ctx, SL_LOG_WARN, "schema tracker: %s.%s is renamed to %s.%s, which "
                         "a rule selects, from a name no rule selects: %s (%.*s)", from->schema,
                         from->table, to->schema, to->table, have == 0 ? "its structure is the "
                         "one given (PUT)" : "its structure is not tracked",
                         (int)(len > 200 ? 200 : len), sql);
            continue;
        }
        const char *fs = NULL, *ft = NULL, *ts = NULL, *tt = NULL;
        map_shadow(r, from->schema, from->table, &fs, &ft);
        map_shadow(r, to->schema, to->table, &ts, &tt);
        if (!fs || !ts)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        sl_sbuf q;
        sl_sbuf_init(&q);
        sl_sbuf_adds(&q, "RENAME TABLE ");
        sl_sbuf_add_qname(&q, fs, ft);
        sl_sbuf_adds(&q, " TO ");
        sl_sbuf_add_qname(&q, ts, tt);
        rc = q.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                   : sl_myconn_exec(r->tdb, q.p, q.len, err);
        sl_sbuf_free(&q);
        if (rc == SL_EDB) {
            char why[SL_ERRMSG_MAX];
            snprintf(why, sizeof why, "%s", err->msg);
            sl_error_set(err, rc, "schema tracker cannot apply %.*s: %s",
                         (int)(len > 300 ? 300 : len), sql, why);
        }
    }
    return rc;
}

int br_track_ddl(br *r, const char *db, size_t dblen, const char *sql, size_t len,
                 unsigned mode, uint64_t next_pos, sl_error *err)
{
    if (!r->tdb)
        return 0;
    char *schema = dblen ? strndup(db, dblen) : NULL;
    if (dblen && !schema)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    sl_ddl d;
    int rc = sl_ddl_parse(sql, len, schema, mode, &d);
    if (rc < 0 || d.temporary || (d.kind != SL_DDL_CREATE_TABLE && d.kind != SL_DDL_ALTER_TABLE &&
                                  d.kind != SL_DDL_DROP_TABLE && d.kind != SL_DDL_RENAME_TABLE &&
                                  d.kind != SL_DDL_CREATE_INDEX && d.kind != SL_DDL_DROP_INDEX &&
                                  d.kind != SL_DDL_DROP_DB)) {
        sl_ddl_free(&d);
        free(schema);
        return rc == SL_ENOMEM ? sl_error_set(err, rc, "out of memory") : 0;
    }
    /* Only statements that touch a selected table move the tracker (a RENAME counts on either
     * side: a table renamed into the selection must arrive with its structure). */
    int relevant = 0;
    for (size_t i = 0; i < d.nnames; i++) {
        if (d.kind == SL_DDL_DROP_DB)
            continue;
        if (sl_rules_find(r->rules, d.names[i].schema, d.names[i].table) >= 0)
            relevant = 1;
    }
    if (d.kind == SL_DDL_DROP_DB) {
        /* the source dropped the schema: so go the shadows of its tables */
        for (size_t i = 0; i < d.nnames; i++) {
            br_shadow *s = shadow_of(r, d.names[i].schema);
            if (!s) {
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                break;
            }
            sl_sbuf q;
            sl_sbuf_init(&q);
            sl_sbuf_adds(&q, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
            add_str(&q, s->shadow);
            if ((rc = run(r, &q, "listing shadow tables", err)) < 0)
                break;
            MYSQL_RES *res = mysql_store_result(r->tdb);
            MYSQL_ROW row;
            while (rc == 0 && res && (row = mysql_fetch_row(res)))
                rc = persist(r, d.names[i].schema, row[0], r->file, next_pos, NULL, err);
            if (res)
                mysql_free_result(res);
            sl_sbuf_init(&q);
            sl_sbuf_adds(&q, "DROP DATABASE IF EXISTS ");
            sl_sbuf_add_ident(&q, s->shadow);
            if (rc == 0)
                rc = run(r, &q, "dropping a shadow schema", err);
            else
                sl_sbuf_free(&q);
            s->created = 0;
        }
        forget_tcols(r);
        sl_ddl_free(&d);
        free(schema);
        return rc;
    }
    if (!relevant) {
        sl_ddl_free(&d);
        free(schema);
        return 0;
    }
    for (size_t i = 0; rc == 0 && i < d.nnames; i++)
        rc = ensure_shadow(r, d.names[i].schema, err);
    if (rc == 0 && schema)
        rc = ensure_shadow(r, schema, err);
    /* Before the position of a seed from the live source, the seed may already hold the
     * statement's effect (below): it is applied as it is, whatever its names. */
    int in_seed = r->seed_file[0] && pos_before(r->file, next_pos, r->seed_file, r->seed_pos);
    int arrives = rc == 0 && !in_seed ? renamed_in(r, &d) : 0;
    unsigned dberr = 0;       /* the server's error number of a statement it refused */
    if (arrives) {
        rc = apply_renames(r, &d, sql, len, err);
        dberr = rc == SL_EDB ? mysql_errno(r->tdb) : 0;
    } else if (rc == 0) {
        if (d.kind == SL_DDL_CREATE_TABLE && !d.is_like && d.nnames == 1)
            /* the statement is the whole structure: replace, whatever the shadow held */
            rc = sl_strack_replace(r->tdb, d.names[0].schema, d.names[0].table, sql, len, mode,
                                   map_shadow, r, &dberr, err);
        else
            rc = sl_strack_apply(r->tdb, sql, len, schema, mode, map_shadow, r, &dberr, err);
    }
    if (rc == SL_EDB && in_seed && already_in_seed(dberr)) {
        /* The structures were seeded from the live source after this DDL ran there. */
        r->host->log(r->ctx, SL_LOG_INFO, "schema tracker: %s (the seed taken at (%s, %llu) "
                     "already holds it)", err->msg, r->seed_file,
                     (unsigned long long)r->seed_pos);
        memset(err, 0, sizeof *err);
        rc = 0;
    }
    if (rc == SL_EDB && d.kind == SL_DDL_DROP_TABLE && dberr == ER_BAD_TABLE_ERROR) {
        /* the server dropped the shadows that exist; the others were never tracked */
        memset(err, 0, sizeof *err);
        rc = 0;
    }
    if (rc == SL_EDB && r->full_metadata) {
        /* The source's table maps carry names, labels and keys: rows decode without the
         * tracker, which then only checks them. Stop tracking the tables the statement names
         * (e.g. the RENAME of an online schema change tool's untracked shadow table) rather
         * than stop replication; a PUT can give them back. */
        r->host->log(r->ctx, SL_LOG_WARN, "%s; the tables it names are no longer tracked "
                     "(rows are decoded with the binlog's full metadata)", err->msg);
        for (size_t i = 0; i < d.nnames; i++) {
            br_shadow *sh = shadow_of(r, d.names[i].schema);
            sl_error ignore = { 0 };
            if (sh)
                sl_strack_drop(r->tdb, d.names[i].schema, d.names[i].table, map_shadow, r,
                               &ignore);
        }
        memset(err, 0, sizeof *err);
        rc = 0;
    }
    if (rc == SL_EDB) {
        char why[SL_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        sl_error_set(err, SL_EDB, "%s; the tracked structure is behind the source's: replace it "
                     "(PUT .../schemas/{db}/{table}) and start the task again", why);
    }
    /* A table renamed out of the selection (or created there by LIKE) stops being tracked, as
     * a DROP would: its DDL is not followed from now on, so a shadow kept under its new name
     * would be stale when a RENAME brings it back. */
    for (size_t i = 0; rc == 0 && !in_seed && i < d.nnames; i++)
        if (sl_rules_find(r->rules, d.names[i].schema, d.names[i].table) < 0)
            rc = sl_strack_drop(r->tdb, d.names[i].schema, d.names[i].table, map_shadow, r, err);
    for (size_t i = 0; rc >= 0 && i < d.nnames; i++) {
        const char *s = d.names[i].schema, *t = d.names[i].table;
        br_shadow *sh = shadow_of(r, s);
        char *create = NULL;
        int src = sh ? sl_strack_show(r->tdb, sh->shadow, t, &create, err) : SL_ENOMEM;
        if (src < 0 && src != SL_ENOENT) {
            rc = src;
            break;
        }
        memset(err, 0, sizeof *err);
        rc = persist(r, s, t, r->file, next_pos, create, err);
        free(create);
        br_table *bt = br_table_find(r, s, t);
        if (bt) {
            br_track_tcols_free(bt->tcols);
            bt->tcols = NULL;
            sl_bl_table_map_free(bt->map);
            bt->map = NULL;
        }
    }
    sl_ddl_free(&d);
    free(schema);
    return rc > 0 ? 0 : rc;
}

/* ---- decoding with the tracked structure -------------------------------------------------- */

void br_track_tcols_free(br_tcols *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n; i++) {
        free(c->c[i].name);
        free(c->c[i].column_type);
        free(c->c[i].data_type);
    }
    free(c->c);
    free(c->pk);
    free(c);
}

/* Read the shadow's columns. SL_ENOENT when the table is not tracked. */
static int read_tcols(br *r, const char *schema, const char *table, br_tcols **out,
                      sl_error *err)
{
    *out = NULL;
    br_shadow *s = shadow_of(r, schema);
    if (!s)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT c.COLUMN_NAME, c.COLUMN_TYPE, IFNULL(l.ID, 0), c.COLUMN_KEY = 'PRI', "
                     "(SELECT k.SEQ_IN_INDEX FROM information_schema.STATISTICS k WHERE "
                     "k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND "
                     "k.COLUMN_NAME = c.COLUMN_NAME AND k.INDEX_NAME = 'PRIMARY'), "
                     "LOWER(c.DATA_TYPE), c.CHARACTER_OCTET_LENGTH, c.NUMERIC_PRECISION, "
                     "c.NUMERIC_SCALE, c.DATETIME_PRECISION "
                     "FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS l "
                     "ON l.COLLATION_NAME = c.COLLATION_NAME WHERE c.TABLE_SCHEMA = ");
    add_str(&q, s->shadow);
    sl_sbuf_adds(&q, " AND c.TABLE_NAME = ");
    add_str(&q, table);
    sl_sbuf_adds(&q, " ORDER BY c.ORDINAL_POSITION");
    int rc = run(r, &q, "reading a tracked structure", err);
    if (rc < 0)
        return rc;
    MYSQL_RES *res = mysql_store_result(r->tdb);
    if (!res)
        return fail(err, r->tdb, "reading a tracked structure");
    uint64_t n = mysql_num_rows(res);
    if (n == 0) {
        mysql_free_result(res);
        return sl_error_set(err, SL_ENOENT, "%s.%s is not tracked", schema, table);
    }
    br_tcols *c = calloc(1, sizeof *c);
    if (!c || !(c->c = calloc(n, sizeof *c->c)) || !(c->pk = calloc(n, sizeof *c->pk))) {
        br_track_tcols_free(c);
        mysql_free_result(res);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    uint32_t seqs[4096];
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        br_tcol *o = &c->c[c->n];
        if (!(o->name = strdup(row[0])) || !(o->column_type = strdup(row[1])) ||
            !(o->data_type = strdup(row[5] ? row[5] : ""))) {
            c->n++;
            br_track_tcols_free(c);
            mysql_free_result(res);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        o->octets = row[6] ? strtoll(row[6], NULL, 10) : -1;
        o->prec = row[7] ? strtoll(row[7], NULL, 10) : -1;
        o->scale = row[8] ? strtoll(row[8], NULL, 10) : -1;
        o->dtprec = row[9] ? strtoll(row[9], NULL, 10) : -1;
        o->collation = (uint16_t)strtoul(row[2], NULL, 10);
        o->is_unsigned = strstr(row[1], " unsigned") != NULL;
        o->pk = row[3] && !strcmp(row[3], "1") && row[4];
        if (o->pk && c->npk < 4096) {
            seqs[c->npk] = (uint32_t)strtoul(row[4], NULL, 10);
            c->pk[c->npk++] = c->n;
        }
        c->n++;
    }
    mysql_free_result(res);
    /* A table WITH SYSTEM VERSIONING without explicit period columns has hidden row_start and
     * row_end at its end, which information_schema.COLUMNS does not list but table maps do. */
    char *create = NULL;
    rc = sl_strack_show(r->tdb, s->shadow, table, &create, err);
    if (rc < 0) {
        br_track_tcols_free(c);
        return rc;
    }
    int implicit = strstr(create, "WITH SYSTEM VERSIONING") &&
                   !strstr(create, "PERIOD FOR SYSTEM_TIME");
    free(create);
    if (implicit) {
        br_tcol *v = realloc(c->c, (c->n + 2) * sizeof *v);
        if (!v) {
            br_track_tcols_free(c);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        c->c = v;
        const char *names[2] = { "row_start", "row_end" };
        for (int k = 0; k < 2; k++) {
            br_tcol *o = &c->c[c->n];
            memset(o, 0, sizeof *o);
            o->name = strdup(names[k]);
            o->column_type = strdup("timestamp(6)");
            o->data_type = strdup("timestamp");
            o->octets = o->prec = o->scale = -1;
            o->dtprec = 6;
            c->n++;
            if (!o->name || !o->column_type || !o->data_type) {
                br_track_tcols_free(c);
                return sl_error_set(err, SL_ENOMEM, "out of memory");
            }
        }
    }
    /* key order, not column order */
    for (uint32_t i = 1; i < c->npk; i++)
        for (uint32_t k = i; k > 0 && seqs[k - 1] > seqs[k]; k--) {
            uint32_t t = seqs[k], p = c->pk[k];
            seqs[k] = seqs[k - 1];
            c->pk[k] = c->pk[k - 1];
            seqs[k - 1] = t;
            c->pk[k - 1] = p;
        }
    *out = c;
    return 0;
}

/* The labels of "enum('a','it''s')" / "set(...)", as the server prints them. */
static int parse_labels(const char *type, sl_bl_column *col)
{
    const char *p = strchr(type, '(');
    if (!p)
        return 0;
    size_t cap = 8;
    col->labels = calloc(cap, sizeof *col->labels);
    col->label_lens = calloc(cap, sizeof *col->label_lens);
    if (!col->labels || !col->label_lens)
        return SL_ENOMEM;
    p++;
    while (*p == '\'') {
        p++;
        size_t n = 0;
        char *buf = malloc(strlen(p) + 1);
        if (!buf)
            return SL_ENOMEM;
        while (*p && !(*p == '\'' && p[1] != '\'')) {
            if (*p == '\'' && p[1] == '\'')
                p++;
            else if (*p == '\\' && p[1])
                p++;
            buf[n++] = *p++;
        }
        buf[n] = '\0';
        if (*p == '\'')
            p++;
        if (col->nlabels == cap) {
            cap *= 2;
            char **l = realloc(col->labels, cap * sizeof *l);
            uint32_t *ll = l ? realloc(col->label_lens, cap * sizeof *ll) : NULL;
            if (l)
                col->labels = l;
            if (!l || !ll) {
                free(buf);
                return SL_ENOMEM;
            }
            col->label_lens = ll;
        }
        col->labels[col->nlabels] = buf;
        col->label_lens[col->nlabels++] = (uint32_t)n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---- the binlog's types against the tracked structure's ---------------------------------- */

/* A column type as both sides can say it: the binlog's real type (sl_bl_column.real_type) and
 * information_schema.COLUMNS.DATA_TYPE of the shadow. */
enum tclass {
    TC_UNKNOWN = 0, TC_TINY, TC_SHORT, TC_INT24, TC_LONG, TC_LONGLONG, TC_DECIMAL, TC_FLOAT,
    TC_DOUBLE, TC_BIT, TC_YEAR, TC_DATE, TC_TIME, TC_DATETIME, TC_TIMESTAMP, TC_CHAR, TC_ENUM,
    TC_SET, TC_VARCHAR, TC_BLOB, TC_GEOMETRY
};

static enum tclass binlog_class(uint8_t t)
{
    switch (t) {
    case SL_MT_TINY: return TC_TINY;
    case SL_MT_SHORT: return TC_SHORT;
    case SL_MT_INT24: return TC_INT24;
    case SL_MT_LONG: return TC_LONG;
    case SL_MT_LONGLONG: return TC_LONGLONG;
    case SL_MT_DECIMAL: case SL_MT_NEWDECIMAL: return TC_DECIMAL;
    case SL_MT_FLOAT: return TC_FLOAT;
    case SL_MT_DOUBLE: return TC_DOUBLE;
    case SL_MT_BIT: return TC_BIT;
    case SL_MT_YEAR: return TC_YEAR;
    case SL_MT_DATE: case SL_MT_NEWDATE: return TC_DATE;
    case SL_MT_TIME: case SL_MT_TIME2: return TC_TIME;
    case SL_MT_DATETIME: case SL_MT_DATETIME2: return TC_DATETIME;
    case SL_MT_TIMESTAMP: case SL_MT_TIMESTAMP2: return TC_TIMESTAMP;
    case SL_MT_STRING: return TC_CHAR;
    case SL_MT_ENUM: return TC_ENUM;
    case SL_MT_SET: return TC_SET;
    case SL_MT_VARCHAR: case SL_MT_VAR_STRING: case SL_MT_VARCHAR_COMPRESSED: return TC_VARCHAR;
    /* MySQL's JSON is a LONGTEXT on a MariaDB shadow, as MariaDB's own JSON is */
    case SL_MT_TINY_BLOB: case SL_MT_BLOB: case SL_MT_MEDIUM_BLOB: case SL_MT_LONG_BLOB:
    case SL_MT_BLOB_COMPRESSED: case SL_MT_JSON: return TC_BLOB;
    case SL_MT_GEOMETRY: return TC_GEOMETRY;
    default: return TC_UNKNOWN;
    }
}

/* The class of a DATA_TYPE; *pack gets a BLOB's length bytes (0 if not one). Types a server
 * adds (MariaDB's INET6, UUID, VECTOR, ...) are TC_UNKNOWN and not compared. */
static enum tclass tracked_class(const char *dt, uint32_t *pack)
{
    static const struct { const char *name; enum tclass c; uint8_t pack; } types[] = {
        { "tinyint", TC_TINY, 0 }, { "smallint", TC_SHORT, 0 }, { "mediumint", TC_INT24, 0 },
        { "int", TC_LONG, 0 }, { "bigint", TC_LONGLONG, 0 }, { "decimal", TC_DECIMAL, 0 },
        { "float", TC_FLOAT, 0 }, { "double", TC_DOUBLE, 0 }, { "bit", TC_BIT, 0 },
        { "year", TC_YEAR, 0 }, { "date", TC_DATE, 0 }, { "time", TC_TIME, 0 },
        { "datetime", TC_DATETIME, 0 }, { "timestamp", TC_TIMESTAMP, 0 },
        { "char", TC_CHAR, 0 }, { "binary", TC_CHAR, 0 }, { "enum", TC_ENUM, 0 },
        { "set", TC_SET, 0 }, { "varchar", TC_VARCHAR, 0 }, { "varbinary", TC_VARCHAR, 0 },
        { "tinyblob", TC_BLOB, 1 }, { "tinytext", TC_BLOB, 1 }, { "blob", TC_BLOB, 2 },
        { "text", TC_BLOB, 2 }, { "mediumblob", TC_BLOB, 3 }, { "mediumtext", TC_BLOB, 3 },
        { "longblob", TC_BLOB, 4 }, { "longtext", TC_BLOB, 4 }, { "json", TC_BLOB, 4 },
        { "geometry", TC_GEOMETRY, 0 }, { "point", TC_GEOMETRY, 0 },
        { "linestring", TC_GEOMETRY, 0 }, { "polygon", TC_GEOMETRY, 0 },
        { "multipoint", TC_GEOMETRY, 0 }, { "multilinestring", TC_GEOMETRY, 0 },
        { "multipolygon", TC_GEOMETRY, 0 }, { "geometrycollection", TC_GEOMETRY, 0 },
        { "geomcollection", TC_GEOMETRY, 0 },
    };
    *pack = 0;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(dt, types[i].name)) {
            *pack = types[i].pack;
            return types[i].c;
        }
    return TC_UNKNOWN;
}

/* The binlog's column type with what its metadata says, for messages. */
static void binlog_type(sl_sbuf *b, const sl_bl_column *c)
{
    switch (c->real_type) {
    case SL_MT_TINY: sl_sbuf_adds(b, "TINYINT"); break;
    case SL_MT_SHORT: sl_sbuf_adds(b, "SMALLINT"); break;
    case SL_MT_INT24: sl_sbuf_adds(b, "MEDIUMINT"); break;
    case SL_MT_LONG: sl_sbuf_adds(b, "INT"); break;
    case SL_MT_LONGLONG: sl_sbuf_adds(b, "BIGINT"); break;
    case SL_MT_NEWDECIMAL: sl_sbuf_addf(b, "DECIMAL(%u,%u)", c->meta >> 8, c->meta & 0xFF); break;
    case SL_MT_DECIMAL: sl_sbuf_adds(b, "DECIMAL"); break;
    case SL_MT_FLOAT: sl_sbuf_adds(b, "FLOAT"); break;
    case SL_MT_DOUBLE: sl_sbuf_adds(b, "DOUBLE"); break;
    case SL_MT_BIT: sl_sbuf_addf(b, "BIT(%u)", c->max_len); break;
    case SL_MT_YEAR: sl_sbuf_adds(b, "YEAR"); break;
    case SL_MT_DATE: case SL_MT_NEWDATE: sl_sbuf_adds(b, "DATE"); break;
    case SL_MT_TIME: sl_sbuf_adds(b, "TIME"); break;
    case SL_MT_DATETIME: sl_sbuf_adds(b, "DATETIME"); break;
    case SL_MT_TIMESTAMP: sl_sbuf_adds(b, "TIMESTAMP"); break;
    case SL_MT_TIME2: sl_sbuf_addf(b, "TIME(%u)", c->meta); break;
    case SL_MT_DATETIME2: sl_sbuf_addf(b, "DATETIME(%u)", c->meta); break;
    case SL_MT_TIMESTAMP2: sl_sbuf_addf(b, "TIMESTAMP(%u)", c->meta); break;
    case SL_MT_STRING: sl_sbuf_addf(b, "CHAR(%u bytes)", c->max_len); break;
    case SL_MT_ENUM: sl_sbuf_adds(b, "ENUM"); break;
    case SL_MT_SET: sl_sbuf_adds(b, "SET"); break;
    case SL_MT_VARCHAR: case SL_MT_VAR_STRING: case SL_MT_VARCHAR_COMPRESSED:
        sl_sbuf_addf(b, "VARCHAR(%u bytes)", c->max_len);
        break;
    case SL_MT_TINY_BLOB: case SL_MT_BLOB: case SL_MT_MEDIUM_BLOB: case SL_MT_LONG_BLOB:
    case SL_MT_BLOB_COMPRESSED:
        sl_sbuf_addf(b, "%s", c->max_len == 1 ? "TINYBLOB/TINYTEXT" : c->max_len == 2 ? "BLOB/TEXT"
                     : c->max_len == 3 ? "MEDIUMBLOB/MEDIUMTEXT" : "LONGBLOB/LONGTEXT");
        break;
    case SL_MT_JSON: sl_sbuf_adds(b, "JSON"); break;
    case SL_MT_GEOMETRY: sl_sbuf_adds(b, "GEOMETRY"); break;
    default: sl_sbuf_addf(b, "type %u", c->real_type); break;
    }
    if (c->is_unsigned)
        sl_sbuf_adds(b, " unsigned");
}

/* 1 when the tracked column cannot be the binlog's: another type class, or (where the binlog's
 * metadata says it and it cannot differ for the same column) another string byte length at the
 * same charset, DECIMAL precision or scale, fractional seconds, BIT width or BLOB size. */
static int type_differs(const sl_bl_column *c, const br_tcol *t)
{
    uint32_t pack;
    enum tclass want = tracked_class(t->data_type, &pack), have = binlog_class(c->real_type);
    if (want == TC_UNKNOWN || have == TC_UNKNOWN)
        return 0;
    if (want != have)
        return 1;
    switch (c->real_type) {
    case SL_MT_STRING: case SL_MT_VARCHAR: case SL_MT_VAR_STRING:
        /* bytes = characters * the charset's longest character: comparable at one charset
         * (binary strings have none in COLUMNS, 63 in the binlog) */
        if (t->octets >= 0 && c->charset &&
            (t->collation ? t->collation == c->charset : c->charset == 63))
            return (uint64_t)t->octets != c->max_len;
        return 0;
    case SL_MT_NEWDECIMAL:
        return t->prec >= 0 && t->scale >= 0 &&
               ((uint32_t)t->prec != (uint32_t)(c->meta >> 8) ||
                (uint32_t)t->scale != (uint32_t)(c->meta & 0xFF));
    case SL_MT_TIME2: case SL_MT_DATETIME2: case SL_MT_TIMESTAMP2:
        return t->dtprec >= 0 && (uint32_t)t->dtprec != c->meta;
    case SL_MT_BIT:
        return t->prec >= 0 && (uint32_t)t->prec != c->max_len;
    case SL_MT_TINY_BLOB: case SL_MT_BLOB: case SL_MT_MEDIUM_BLOB: case SL_MT_LONG_BLOB:
    case SL_MT_JSON:
        return pack && c->max_len && pack != c->max_len;
    default:
        return 0;
    }
}

static void describe(sl_sbuf *b, const sl_bl_table_map *m, const br_tcols *tc)
{
    sl_sbuf_addf(b, "the binlog's table map has %u column(s) (", m->ncols);
    for (uint32_t i = 0; i < m->ncols; i++) {
        sl_sbuf_addf(b, "%s%s ", i ? ", " : "", m->cols[i].name ? m->cols[i].name : "?");
        binlog_type(b, &m->cols[i]);
    }
    sl_sbuf_addf(b, "), the tracked structure %u (", tc->n);
    for (uint32_t i = 0; i < tc->n; i++)
        sl_sbuf_addf(b, "%s%s %s", i ? ", " : "", tc->c[i].name, tc->c[i].column_type);
    sl_sbuf_adds(b, ")");
}

int br_track_fill(br *r, br_table *t, sl_bl_table_map *m, sl_error *err)
{
    if (!r->tdb)
        return 0;
    int minimal = !m->has_names;
    /* Before the position of a seed taken from the live source, the tracked structure may be
     * ahead of the binlog's: a full table map is the better witness there. */
    if (!minimal && r->seed_file[0] && pos_before(r->file, r->pos, r->seed_file, r->seed_pos))
        return 0;
    if (!t->tcols) {
        int rc = read_tcols(r, m->schema, m->table, &t->tcols, err);
        if (rc == SL_ENOENT && !minimal)
            return 0;     /* full metadata and nothing tracked (yet): the binlog says it all */
        if (rc == SL_ENOENT)
            return sl_error_set(err, SL_EINVAL, "row event of %s.%s at (%s, %llu), whose "
                                "structure the schema tracker does not know (e.g. renamed into "
                                "the selection from a table no rule selects), and the source's "
                                "binlog_row_metadata carries no column names: give the structure "
                                "the table has at this position with PUT /api/v1/tasks/%s/"
                                "sources/%s/schemas/%s/%s and start the task again", m->schema,
                                m->table, r->file, (unsigned long long)r->pos,
                                r->cfg->task_name, r->cfg->source_name, m->schema, m->table);
        if (rc < 0)
            return rc;
    }
    /* The table map always carries each column's binlog type and metadata, MINIMAL or not: a
     * tracked structure that disagrees with them is not the one these rows were written with
     * (e.g. a seed taken from the source after a DDL that reordered columns), and decoding
     * with it would put values in the wrong columns, silently. */
    const br_tcols *tc = t->tcols;
    sl_sbuf why;
    sl_sbuf_init(&why);
    if (tc->n != m->ncols)
        sl_sbuf_addf(&why, "the rows have %u column(s), the tracked structure %u", m->ncols,
                     tc->n);
    for (uint32_t i = 0; !why.len && i < m->ncols; i++) {
        const sl_bl_column *c = &m->cols[i];
        const br_tcol *o = &tc->c[i];
        /* integers only: the server flags YEAR unsigned, DECIMAL/FLOAT per version */
        int integer = c->real_type == SL_MT_TINY || c->real_type == SL_MT_SHORT ||
                      c->real_type == SL_MT_INT24 || c->real_type == SL_MT_LONG ||
                      c->real_type == SL_MT_LONGLONG;
        if ((c->name && strcasecmp(c->name, o->name)) || type_differs(c, o) ||
            (m->has_signedness && integer && c->is_unsigned != o->is_unsigned)) {
            sl_sbuf_addf(&why, "column %u is ", i + 1);
            if (c->name)
                sl_sbuf_addf(&why, "`%s` ", c->name);
            binlog_type(&why, c);
            sl_sbuf_addf(&why, " in the binlog's table map, `%s` %s in the tracked structure",
                         o->name, o->column_type);
        }
    }
    if (why.len || why.oom) {
        sl_sbuf b;
        sl_sbuf_init(&b);
        if (r->seed_file[0] && pos_before(r->file, r->pos, r->seed_file, r->seed_pos))
            sl_sbuf_addf(&b, "the structure was seeded from the source as it was at (%s, %llu), "
                         "after these rows: a DDL in between changed it; ", r->seed_file,
                         (unsigned long long)r->seed_pos);
        describe(&b, m, tc);
        int rc = sl_error_set(err, SL_EINVAL, "the tracked structure of %s.%s does not match "
                              "its rows at (%s, %llu): %s; decoding them with it would put "
                              "values in the wrong columns. Give the structure the table had at "
                              "this position (PUT /api/v1/tasks/%s/sources/%s/schemas/%s/%s with "
                              "{\"sql_content\": \"CREATE TABLE ...\"}) and start the task "
                              "again; %s", m->schema, m->table, r->file,
                              (unsigned long long)r->pos, why.oom ? "(out of memory)" : why.p,
                              r->cfg->task_name, r->cfg->source_name, m->schema, m->table,
                              b.oom ? "(out of memory)" : b.p);
        sl_sbuf_free(&b);
        sl_sbuf_free(&why);
        return rc;
    }
    sl_sbuf_free(&why);
    if (!minimal && m->has_signedness && m->has_charsets && m->npk)
        return 0;
    /* complete what the event does not carry */
    for (uint32_t i = 0; i < m->ncols; i++) {
        sl_bl_column *c = &m->cols[i];
        if (!c->name && !(c->name = strdup(tc->c[i].name)))
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        if (!m->has_signedness)
            c->is_unsigned = tc->c[i].is_unsigned;
        if (!c->charset && tc->c[i].collation)
            c->charset = tc->c[i].collation;
        if ((c->real_type == SL_MT_ENUM || c->real_type == SL_MT_SET) && !c->nlabels &&
            parse_labels(tc->c[i].column_type, c) < 0)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        c->pk = 0;
    }
    if (!m->npk && tc->npk) {
        if (!(m->pk = malloc(tc->npk * sizeof *m->pk)))
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        memcpy(m->pk, tc->pk, tc->npk * sizeof *m->pk);
        m->npk = tc->npk;
    }
    for (uint32_t k = 0; k < m->npk; k++)
        if (m->pk[k] < m->ncols)
            m->cols[m->pk[k]].pk = 1;
    m->has_names = m->has_signedness = m->has_charsets = 1;
    return 0;
}

/* ---- stop and cleanup --------------------------------------------------------------------- */

void br_track_stop(br *r)
{
    forget_tcols(r);
    if (r->tdb) {
        mysql_close(r->tdb);
        r->tdb = NULL;
    }
    while (r->shadows) {
        br_shadow *n = r->shadows->next;
        free(r->shadows->schema);
        free(r->shadows->shadow);
        free(r->shadows);
        r->shadows = n;
    }
}

int br_track_cleanup(br *r, sl_error *err)
{
    const br_cfg *c = r->cfg;
    set_shadow_prefix(r);
    if (!r->tdb) {
        sl_myconn_opts o = { SL_MYCONN_FROM(c, target), .init_sql = TRACK_SESSION };
        if (!(r->tdb = sl_myconn_open(&o, err)))
            return err->code ? err->code : SL_ECONN;
    }
    int rc = drop_shadows(r, err);
    if (rc == 0)
        rc = br_osc_cleanup(r, err);
    if (rc == 0) {
        sl_sbuf q;
        sl_sbuf_init(&q);
        sl_sbuf_adds(&q, "DROP TABLE IF EXISTS ");
        add_table(r, &q);
        rc = run(r, &q, "dropping the tracker table", err);
    }
    br_track_stop(r);
    return rc;
}

/* ---- the table-structure endpoints (plugin ctl, the subtask not running) ------------------ */

/* Before the sink's first checkpoint a start keeps the versions at its start position (the
 * seed, br_track_start): the earliest ones. A request acts there, so that a PUT can repair a
 * seed that the rows before a DDL do not match. */
static int ctl_open_seed(br *r, sl_error *err)
{
    const br_cfg *c = r->cfg;
    memset(err, 0, sizeof *err);
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT binlog_name, binlog_pos FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, c->source_name);
    sl_sbuf_adds(&q, " AND " NOT_SEED_MARK " ORDER BY binlog_name, binlog_pos LIMIT 1");
    MYSQL_RES *res = NULL;
    if (!q.oom && mysql_real_query(r->tdb, q.p, (unsigned long)q.len) == 0)
        res = mysql_store_result(r->tdb);
    sl_sbuf_free(&q);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    int rc = 0;
    if (row && row[0] && row[1]) {
        snprintf(r->commit_file, sizeof r->commit_file, "%s", row[0]);
        r->commit_pos = strtoull(row[1], NULL, 10);
    } else {
        /* no versions table, or nothing in it */
        rc = sl_error_set(err, SL_EINVAL, "source %s of task %s has no table structures yet: "
                          "its incremental phase never ran", c->source_name, c->task_name);
    }
    if (res)
        mysql_free_result(res);
    return rc;
}

/* The checkpoint a request acts at: the versions it reads are those a start would restore. */
static int ctl_open(br *r, sl_error *err)
{
    const br_cfg *c = r->cfg;
    set_shadow_prefix(r);
    if (!r->tdb) {
        sl_myconn_opts o = { SL_MYCONN_FROM(c, target), .init_sql = TRACK_SESSION };
        if (!(r->tdb = sl_myconn_open(&o, err)))
            return err->code ? err->code : SL_ECONN;
    }
    sl_ckpt_pos ck;
    int rc = sl_ckpt_read(r->tdb, c->meta_schema, c->task_name, c->source_name, &ck, err);
    if (rc == SL_ENOENT)
        return ctl_open_seed(r, err);
    if (rc < 0)
        return rc;
    snprintf(r->commit_file, sizeof r->commit_file, "%s", ck.binlog_name);
    r->commit_pos = ck.binlog_pos;
    sl_ckpt_pos_clear(&ck);
    return 0;
}

/* Rows of the latest version at or before the checkpoint of each table (of schema, if given). */
static MYSQL_RES *ctl_latest(br *r, const char *schema, const char *table, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT schema_name, table_name, create_sql FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, r->cfg->source_name);
    if (schema) {
        sl_sbuf_adds(&q, " AND schema_name = ");
        add_str(&q, schema);
    }
    if (table) {
        sl_sbuf_adds(&q, " AND table_name = ");
        add_str(&q, table);
    }
    sl_sbuf_adds(&q, " AND " NOT_SEED_MARK " AND NOT ");
    br_sql_pos_cmp(&q, ">", r->commit_file, r->commit_pos);
    sl_sbuf_adds(&q, " ORDER BY schema_name, table_name, binlog_name DESC, binlog_pos DESC");
    if (run(r, &q, "reading the tracked structures", err) < 0)
        return NULL;
    MYSQL_RES *res = mysql_store_result(r->tdb);
    if (!res)
        fail(err, r->tdb, "reading the tracked structures");
    return res;
}

/* The tracked CREATE TABLE of schema.table at the checkpoint, malloc'd; SL_ENOENT if none. */
static int ctl_get(br *r, const char *schema, const char *table, char **create, sl_error *err)
{
    *create = NULL;
    MYSQL_RES *res = ctl_latest(r, schema, table, err);
    if (!res)
        return err->code ? err->code : SL_EDB;
    MYSQL_ROW row = mysql_fetch_row(res);
    int rc = 0;
    if (!row || !row[2])
        rc = sl_error_set(err, SL_ENOENT, "table %s.%s is not tracked by task %s source %s",
                          schema, table, r->cfg->task_name, r->cfg->source_name);
    else if (!(*create = strdup(row[2])))
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    mysql_free_result(res);
    return rc;
}

int br_track_ctl(br *r, const json_t *req, json_t **reply, sl_error *err)
{
    *reply = NULL;
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *schema = json_string_value(json_object_get(req, "schema"));
    const char *table = json_string_value(json_object_get(req, "table"));
    const char *sql = json_string_value(json_object_get(req, "sql"));
    if (!op)
        return sl_error_set(err, SL_EINVAL, "no op");
    int rc = ctl_open(r, err);
    if (rc < 0)
        return rc;
    if (!strcmp(op, "schema_list")) {
        /* schemas (no schema given) or the tables of one, as tracked at the checkpoint */
        MYSQL_RES *res = ctl_latest(r, schema, NULL, err);
        if (!res)
            return err->code ? err->code : SL_EDB;
        json_t *out = json_array();
        char ls[256] = "", lt[256] = "";
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(res))) {
            int same = !strcmp(row[0], ls) && !strcmp(row[1], lt);
            snprintf(ls, sizeof ls, "%s", row[0]);
            snprintf(lt, sizeof lt, "%s", row[1]);
            if (same || !row[2])
                continue;   /* an older version, or a table dropped */
            const char *name = schema ? row[1] : row[0];
            size_t n = json_array_size(out);
            if (!n || strcmp(json_string_value(json_array_get(out, n - 1)), name))
                json_array_append_new(out, json_string(name));
        }
        mysql_free_result(res);
        *reply = out;
        return 0;
    }
    if (!schema || !table)
        return sl_error_set(err, SL_EINVAL, "%s needs a schema and a table", op);
    if (!strcmp(op, "schema_get")) {
        char *create;
        if ((rc = ctl_get(r, schema, table, &create, err)) < 0)
            return rc;
        *reply = json_pack("{s:s, s:s, s:s}", "schema_name", schema, "table_name", table,
                           "schema_create_sql", create);
        free(create);
        return 0;
    }
    if (!strcmp(op, "schema_put")) {
        if (!sql || !*sql)
            return sl_error_set(err, SL_EINVAL, "sql_content is empty");
        /* a structure, nothing else: CREATE TABLE ... SELECT would run a query on the target */
        sl_ddl d;
        int prc = sl_ddl_parse(sql, strlen(sql), schema, 0, &d);   /* the user's text */
        int structure = prc == 0 && d.kind == SL_DDL_CREATE_TABLE && !d.writes_rows && !d.temporary;
        sl_ddl_free(&d);
        if (prc == SL_ENOMEM)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        if (!structure)
            return sl_error_set(err, SL_EINVAL, "sql_content must be one CREATE TABLE statement "
                                "giving the structure (no SELECT): %.200s", sql);
        /* the server checks the statement on a scratch shadow first: refused, nothing changes */
        if ((rc = ensure_shadow(r, schema, err)) < 0 ||
            (rc = sl_strack_replace(r->tdb, schema, table, sql, strlen(sql), 0, map_shadow, r,
                                    NULL, err)) < 0)
        {
            if (rc == SL_EDB)
                err->code = rc = SL_EINVAL;   /* the server refused the statement: bad input */
            return rc;
        }
        char *create = NULL;
        br_shadow *sh = shadow_of(r, schema);
        if (!sh)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        if ((rc = sl_strack_show(r->tdb, sh->shadow, table, &create, err)) < 0)
            return rc;
        rc = persist(r, schema, table, r->commit_file, r->commit_pos, create, err);
        free(create);
        return rc;
    }
    if (!strcmp(op, "schema_delete")) {
        char *create;
        if ((rc = ctl_get(r, schema, table, &create, err)) < 0)
            return rc;
        free(create);
        return persist(r, schema, table, r->commit_file, r->commit_pos, NULL, err);
    }
    return sl_error_set(err, SL_ENOTSUP, "unknown op %s", op);
}
