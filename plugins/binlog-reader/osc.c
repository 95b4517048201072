/*
 * osc.c - the binlog-reader's part in online schema changes (gh-ost, pt-online-schema-change),
 * DM's enhance_online_schema_change: the tools' tables never leave the reader, and the ALTER a
 * tool ran on its ghost table reaches the real table at the cut-over RENAME, once.
 *
 * How the tools work, as the binlog shows it (gh-ost go/logic/applier.go; pt-osc's swap):
 *   CREATE TABLE _t_gho LIKE t | CREATE TABLE _t_new (...)   ghost table
 *   ALTER TABLE _t_gho <alter> [; ALTER TABLE _t_gho AUTO_INCREMENT=n]
 *   rows copied into the ghost (INSERT IGNORE .. SELECT), and the real table's own changes
 *   copied again (gh-ost from the binlog, pt-osc by triggers on t: in ROW format both the
 *   real table's rows and the trigger-written ghost rows are logged, in one transaction)
 *   gh-ost: _t_ghc (changelog, heartbeats), _t_ghk (checkpoints), _t_del (the cut-over sentry)
 *   RENAME TABLE t TO _t_del, _t_gho TO t | RENAME TABLE t TO _t_old, _t_new TO t
 *   (gh-ost's older two-step cut-over: ALTER TABLE t RENAME _t_del; ALTER TABLE _t_gho RENAME t)
 *   DROP TABLE _t_del / _t_old / _t_ghc
 *
 * What the reader does: rows of the tool's tables are skipped (the real table's rows carry every
 * change: the ghost's are the same changes again, so applying them would apply them twice),
 * their DDL is consumed, each ALTER of a ghost table is remembered with the real table's name,
 * and the cut-over RENAME is replaced by one ALTER of the real table with the remembered
 * specifications joined (one statement, because the sink's checkpoint after a DDL is the
 * position of its binlog event: two statements at one position could not be resumed between).
 * The real table on the target thus keeps its rows and gets the new structure at the cut-over,
 * exactly where the source's rows change shape.
 *
 * Persistence follows the schema tracker (track.c): each change of a migration is a version row
 * (source, schema, ghost table, binlog position, the joined specifications; NULL = none in
 * flight) of `<meta_schema>`.`<task>_onlineddl`, written before the statement's effect leaves the
 * reader, counted only once the syncer checkpoint is at or past it. A start deletes the versions
 * after the checkpoint (their statements are read again) and restores the latest one of each
 * ghost table at or before it.
 */
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ddl.h"
#include "oscname.h"

typedef struct br_osc {
    char          *schema, *ghost, *real;
    char          *specs;      /* the ALTER specifications so far, joined with ", " */
    unsigned       mode;       /* the SL_DDLM_* modes the specifications read in */
    struct br_osc *next;
} br_osc;

enum { OSC_NONE = SL_OSC_NONE, OSC_GHOST = SL_OSC_GHOST, OSC_TRASH = SL_OSC_TRASH };

/* ---- names -------------------------------------------------------------------------------- */

/* The kind of a tool's table (oscname.h), when the task follows the tools. */
static int classify(br *r, const char *schema, const char *table, char *real, size_t rlen)
{
    return r->cfg->online_ddl ? sl_osc_kind(r->rules, schema, table, real, rlen) : OSC_NONE;
}

int br_osc_table(br *r, const char *schema, const char *table)
{
    char real[256];
    return classify(r, schema, table, real, sizeof real) != OSC_NONE;
}

/* ---- persisted versions ------------------------------------------------------------------- */

static void add_table(br *r, sl_sbuf *b)
{
    char name[512];
    snprintf(name, sizeof name, "%s_onlineddl", r->cfg->task_name);
    sl_sbuf_add_qname(b, r->cfg->meta_schema, name);
}

static void add_str(sl_sbuf *b, const char *s)
{
    sl_sbuf_add_quoted(b, s, strlen(s));
}

static int run(br *r, sl_sbuf *q, sl_error *err)
{
    int rc = q->oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                    : sl_myconn_exec(r->tdb, q->p, q->len, err);
    sl_sbuf_free(q);
    return rc;
}

/* The modes of a migration's specifications are kept in front of them in the versions table,
 * as a comment (so a row stays what it was for a reader that does not know it): MODE_TAG, the
 * SL_DDLM_* bits in decimal, and the comment's end. */
#define MODE_TAG "/*sl_ddl_mode="

/* The modes of kept specifications, and where the specifications start. */
static const char *mode_of_kept(const char *kept, unsigned *mode)
{
    *mode = 0;
    if (strncmp(kept, MODE_TAG, sizeof MODE_TAG - 1) != 0)
        return kept;
    char *end;
    unsigned long m = strtoul(kept + sizeof MODE_TAG - 1, &end, 10);
    if (strncmp(end, "*/", 2) != 0 || m > 0xff)
        return kept;
    *mode = (unsigned)m;
    return end + 2;
}

/* Persist specs (NULL: no migration in flight), read in mode, as the version of schema.ghost at
 * file:pos. */
static int persist(br *r, const char *schema, const char *ghost, const char *file, uint64_t pos,
                   const char *specs, unsigned mode, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "INSERT INTO ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " (source_name, ghost_schema, ghost_table, binlog_name, binlog_pos, ddls) "
                     "VALUES (");
    add_str(&q, r->cfg->source_name);
    sl_sbuf_adds(&q, ", ");
    add_str(&q, schema);
    sl_sbuf_adds(&q, ", ");
    add_str(&q, ghost);
    sl_sbuf_adds(&q, ", ");
    add_str(&q, file);
    sl_sbuf_addf(&q, ", %llu, ", (unsigned long long)pos);
    if (specs && mode) {
        sl_sbuf kept;
        sl_sbuf_init(&kept);
        sl_sbuf_addf(&kept, MODE_TAG "%u*/%s", mode, specs);
        if (kept.oom)
            q.oom = 1;
        else
            add_str(&q, kept.p);
        sl_sbuf_free(&kept);
    } else if (specs) {
        add_str(&q, specs);
    } else {
        sl_sbuf_adds(&q, "NULL");
    }
    sl_sbuf_adds(&q, ") ON DUPLICATE KEY UPDATE ddls = VALUES(ddls)");
    return run(r, &q, err);
}

static br_osc *find(br *r, const char *schema, const char *ghost)
{
    for (br_osc *o = r->osc; o; o = o->next)
        if (!strcmp(o->schema, schema) && !strcmp(o->ghost, ghost))
            return o;
    return NULL;
}

static void osc_free(br_osc *o)
{
    free(o->schema);
    free(o->ghost);
    free(o->real);
    free(o->specs);
    free(o);
}

static void forget(br *r, const char *schema, const char *ghost)
{
    for (br_osc **p = &r->osc; *p; p = &(*p)->next)
        if (!strcmp((*p)->schema, schema) && !strcmp((*p)->ghost, ghost)) {
            br_osc *o = *p;
            *p = o->next;
            osc_free(o);
            return;
        }
}

/* Set the in-memory migration of schema.ghost (real: its real table) to specs, read in mode. */
static int remember(br *r, const char *schema, const char *ghost, const char *real,
                    const char *specs, unsigned mode)
{
    br_osc *o = find(r, schema, ghost);
    if (!o) {
        if (!(o = calloc(1, sizeof *o)) || !(o->schema = strdup(schema)) ||
            !(o->ghost = strdup(ghost)) || !(o->real = strdup(real))) {
            if (o)
                osc_free(o);
            return SL_ENOMEM;
        }
        o->next = r->osc;
        r->osc = o;
    }
    char *s = strdup(specs);
    if (!s)
        return SL_ENOMEM;
    free(o->specs);
    o->specs = s;
    o->mode = mode;
    return 0;
}

void br_osc_stop(br *r)
{
    while (r->osc) {
        br_osc *n = r->osc->next;
        osc_free(r->osc);
        r->osc = n;
    }
}

int br_osc_start(br *r, sl_error *err)
{
    const br_cfg *c = r->cfg;
    br_osc_stop(r);
    if (!r->tdb)
        return 0;
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "CREATE TABLE IF NOT EXISTS ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " (source_name VARCHAR(128) NOT NULL, ghost_schema VARCHAR(64) NOT NULL, "
                     "ghost_table VARCHAR(64) NOT NULL, binlog_name VARCHAR(255) NOT NULL, "
                     "binlog_pos BIGINT UNSIGNED NOT NULL, ddls MEDIUMTEXT NULL, "
                     "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
                     "PRIMARY KEY (source_name, ghost_schema, ghost_table, binlog_name, binlog_pos)) "
                     "DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin");
    int rc = run(r, &q, err);
    if (rc < 0)
        return rc;
    /* as in track.c: versions after the resume position are read again; before the sink's
     * first checkpoint none can be trusted */
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "DELETE FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, c->source_name);
    if (!r->track_fresh) {
        sl_sbuf_adds(&q, " AND ");
        br_sql_pos_cmp(&q, ">", r->commit_file, r->commit_pos);
    }
    if ((rc = run(r, &q, err)) < 0)
        return rc;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT ghost_schema, ghost_table, binlog_name, binlog_pos, ddls FROM ");
    add_table(r, &q);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    add_str(&q, c->source_name);
    sl_sbuf_adds(&q, " ORDER BY ghost_schema, ghost_table, binlog_name DESC, binlog_pos DESC");
    MYSQL_RES *res = NULL;
    if (!q.oom && mysql_real_query(r->tdb, q.p, (unsigned long)q.len) == 0)
        res = mysql_store_result(r->tdb);
    sl_sbuf_free(&q);
    if (!res)
        return sl_error_set(err, SL_EDB, "online DDL: reading %s_onlineddl: %s",
                            c->task_name, mysql_error(r->tdb));
    MYSQL_ROW row;
    char ls[256] = "", lt[256] = "";
    int n = 0;
    while (rc == 0 && (row = mysql_fetch_row(res))) {
        if (!strcmp(row[0], ls) && !strcmp(row[1], lt))
            continue;     /* older than the version just restored */
        snprintf(ls, sizeof ls, "%s", row[0]);
        snprintf(lt, sizeof lt, "%s", row[1]);
        char real[256];
        if (row[4] && classify(r, row[0], row[1], real, sizeof real) == OSC_GHOST) {
            unsigned mode;
            const char *specs = mode_of_kept(row[4], &mode);
            if (remember(r, row[0], row[1], real, specs, mode) < 0)
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            n++;
        }
        sl_sbuf d;
        sl_sbuf_init(&d);
        sl_sbuf_adds(&d, "DELETE FROM ");
        add_table(r, &d);
        br_sql_older_versions(&d, c->source_name, "ghost_schema", row[0], "ghost_table", row[1],
                              row[2], strtoull(row[3], NULL, 10));
        if (rc == 0)
            rc = run(r, &d, err);
        else
            sl_sbuf_free(&d);
    }
    mysql_free_result(res);
    if (rc == 0 && n)
        r->host->log(r->ctx, SL_LOG_INFO, "online DDL: %d migration(s) in flight restored as of "
                     "(%s, %llu)", n, r->commit_file, (unsigned long long)r->commit_pos);
    return rc;
}

int br_osc_cleanup(br *r, sl_error *err)
{
    if (!r->tdb)
        return 0;
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "DROP TABLE IF EXISTS ");
    add_table(r, &q);
    br_osc_stop(r);
    return run(r, &q, err);
}

/* ---- statements --------------------------------------------------------------------------- */

/* The ALTER specifications of "ALTER TABLE <name> <specs>": the text after the name, trimmed. */
static void specs_of(const char *sql, size_t len, const sl_ddl_name *nm, const char **p,
                     size_t *n)
{
    const char *s = sql + nm->end, *e = sql + len;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r' ||
                     e[-1] == ';' || e[-1] == '\0'))
        e--;
    *p = s;
    *n = (size_t)(e - s);
}

/* The cut-over of schema.ghost into its real table at file:next_pos: the ALTER to send on, and
 * the modes it reads in. */
static int cut_over(br *r, const char *schema, const char *ghost, const char *real,
                    uint64_t next_pos, char **emit, unsigned *emit_mode, sl_error *err)
{
    br_osc *o = find(r, schema, ghost);
    if (!o)
        return sl_error_set(err, SL_EINVAL, "online DDL: the cut-over RENAME of %s.%s into %s.%s "
                            "comes without the migration's start (its CREATE and ALTER of %s "
                            "ran before the task's start position), so the ALTER to apply to "
                            "%s.%s is unknown: apply it to the target table by hand, replace the "
                            "tracked structure (PUT .../schemas/%s/%s) and start the task from "
                            "after the cut-over, or run the task with "
                            "enhance_online_schema_change false", schema, ghost, schema, real,
                            ghost, schema, real, schema, real);
    int rc = 0;
    if (o->specs[0]) {
        sl_sbuf a;
        sl_sbuf_init(&a);
        sl_sbuf_adds(&a, "ALTER TABLE ");
        sl_sbuf_add_qname(&a, schema, real);
        sl_sbuf_adds(&a, " ");
        sl_sbuf_adds(&a, o->specs);
        if (a.oom) {
            sl_sbuf_free(&a);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        /* the tracker checks it on the real table's shadow: a statement the server refuses
         * there pauses the subtask before anything reaches the target */
        rc = br_track_ddl(r, schema, strlen(schema), a.p, a.len, o->mode, next_pos, err);
        if (rc < 0) {
            sl_sbuf_free(&a);
            return rc;
        }
        *emit = a.p;     /* handed over: sl_sbuf's buffer is malloc'd */
        *emit_mode = o->mode;
    }
    if ((rc = persist(r, schema, ghost, r->file, next_pos, NULL, 0, err)) < 0) {
        free(*emit);
        *emit = NULL;
        return rc;
    }
    r->host->log(r->ctx, SL_LOG_INFO, "online DDL: cut-over of %s.%s into %s.%s at (%s, %llu): "
                 "%s", schema, ghost, schema, real, r->file, (unsigned long long)next_pos,
                 *emit ? *emit : "no ALTER to apply");
    forget(r, schema, ghost);
    return *emit ? BR_OSC_REPLACED : BR_OSC_CONSUMED;
}

int br_osc_ddl(br *r, const char *db, size_t dblen, const char *sql, size_t len,
               unsigned mode, uint64_t next_pos, char **emit, unsigned *emit_mode, sl_error *err)
{
    *emit = NULL;
    *emit_mode = 0;
    if (!r->cfg->online_ddl)
        return 0;
    char *schema = dblen ? strndup(db, dblen) : NULL;
    if (dblen && !schema)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    sl_ddl d;
    int rc = sl_ddl_parse(sql, len, schema, mode, &d);
    free(schema);
    if (rc < 0 || d.kind == SL_DDL_OTHER || !d.nnames || d.temporary || d.kind == SL_DDL_DROP_DB ||
        d.kind == SL_DDL_CREATE_DB || d.kind == SL_DDL_ALTER_DB) {
        sl_ddl_free(&d);
        return rc == SL_ENOMEM ? sl_error_set(err, rc, "out of memory") : 0;
    }
    int kinds[64];
    char reals[64][256];
    size_t n = d.nnames < 64 ? d.nnames : 64;
    int any = 0, all = d.nnames <= 64;
    for (size_t i = 0; i < n; i++) {
        kinds[i] = classify(r, d.names[i].schema, d.names[i].table, reals[i], sizeof reals[i]);
        any |= kinds[i] != OSC_NONE;
        all &= kinds[i] != OSC_NONE;
    }
    rc = 0;
    if (!any)
        goto out;
    const sl_ddl_name *nm = d.names;
    switch (d.kind) {
    case SL_DDL_CREATE_TABLE:
        /* CREATE TABLE _t_gho LIKE t names the real table second */
        if (kinds[0] == OSC_GHOST) {
            if ((rc = persist(r, nm[0].schema, nm[0].table, r->file, next_pos, "", 0, err)) == 0 &&
                remember(r, nm[0].schema, nm[0].table, reals[0], "", 0) < 0)
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        if (rc == 0 && kinds[0] != OSC_NONE)
            rc = BR_OSC_CONSUMED;
        break;
    case SL_DDL_ALTER_TABLE:
        if (n == 1 && kinds[0] == OSC_GHOST) {
            const char *p;
            size_t sl;
            specs_of(sql, len, &nm[0], &p, &sl);
            br_osc *o = find(r, nm[0].schema, nm[0].table);
            if (o && o->specs[0] && o->mode != mode) {
                /* joined, they would be one statement read in one sql_mode */
                rc = sl_error_set(err, SL_ENOTSUP, "online DDL: the ALTERs of %s.%s ran under "
                                  "different sql_modes (ANSI_QUOTES, NO_BACKSLASH_ESCAPES, ...), so "
                                  "they cannot be joined into the one ALTER of %s.%s at the "
                                  "cut-over: run the migration from one session, or run the task "
                                  "with enhance_online_schema_change false: %.*s", nm[0].schema,
                                  nm[0].table, nm[0].schema, reals[0], (int)(len < 300 ? len : 300),
                                  sql);
                break;
            }
            sl_sbuf s;
            sl_sbuf_init(&s);
            if (o && o->specs[0]) {
                sl_sbuf_adds(&s, o->specs);
                sl_sbuf_adds(&s, ", ");
            }
            sl_sbuf_add(&s, p, sl);
            sl_sbuf_adds(&s, "");
            if (s.oom)
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            else if ((rc = persist(r, nm[0].schema, nm[0].table, r->file, next_pos, s.p, mode,
                                   err)) == 0 &&
                     remember(r, nm[0].schema, nm[0].table, reals[0], s.p, mode) < 0)
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            sl_sbuf_free(&s);
            if (rc == 0)
                rc = BR_OSC_CONSUMED;
        } else if (n == 2 && kinds[0] == OSC_GHOST && kinds[1] == OSC_NONE &&
                   !strcmp(nm[1].schema, nm[0].schema) && !strcmp(nm[1].table, reals[0])) {
            /* gh-ost's two-step cut-over, second step: ALTER TABLE _t_gho RENAME t */
            rc = cut_over(r, nm[0].schema, nm[0].table, reals[0], next_pos, emit, emit_mode, err);
        } else if (n == 2 && kinds[0] == OSC_NONE && kinds[1] == OSC_TRASH &&
                   !strcmp(nm[0].table, reals[1])) {
            /* its first step, ALTER TABLE t RENAME _t_del: the real table stays on the target */
            rc = BR_OSC_CONSUMED;
        } else if (all) {
            rc = BR_OSC_CONSUMED;   /* an ALTER of a trash table */
        }
        break;
    case SL_DDL_RENAME_TABLE: {
        /* every pair must be "t TO _t_del/_t_old" or "_t_gho/_t_new TO t" */
        int ok = n == d.nnames && n % 2 == 0;
        for (size_t i = 0; ok && i < n; i += 2) {
            int to_trash = kinds[i] == OSC_NONE && kinds[i + 1] == OSC_TRASH &&
                           !strcmp(nm[i].table, reals[i + 1]);
            int cut = kinds[i] == OSC_GHOST && kinds[i + 1] == OSC_NONE &&
                      !strcmp(nm[i].schema, nm[i + 1].schema) &&
                      !strcmp(nm[i + 1].table, reals[i]);
            ok = to_trash || cut;
        }
        if (!ok)
            break;     /* not a cut-over: handled as any RENAME */
        rc = BR_OSC_CONSUMED;
        for (size_t i = 0; i < n && rc >= 0; i += 2) {
            if (kinds[i] != OSC_GHOST)
                continue;
            if (*emit)
                rc = sl_error_set(err, SL_ENOTSUP, "online DDL: one RENAME cuts over two "
                                  "migrations: %.*s", (int)(len < 300 ? len : 300), sql);
            else
                rc = cut_over(r, nm[i].schema, nm[i].table, reals[i], next_pos, emit, emit_mode,
                              err);
        }
        break;
    }
    case SL_DDL_DROP_TABLE:
        if (!all)
            break;     /* with other tables: handled as any DROP */
        for (size_t i = 0; i < n && rc == 0; i++)
            if (kinds[i] == OSC_GHOST && find(r, nm[i].schema, nm[i].table)) {
                /* a migration given up: what it remembered goes */
                rc = persist(r, nm[i].schema, nm[i].table, r->file, next_pos, NULL, 0, err);
                forget(r, nm[i].schema, nm[i].table);
            }
        if (rc == 0)
            rc = BR_OSC_CONSUMED;
        break;
    default:
        /* TRUNCATE, CREATE/DROP INDEX of a tool's table */
        if (all)
            rc = BR_OSC_CONSUMED;
        break;
    }
out:
    sl_ddl_free(&d);
    return rc;
}
