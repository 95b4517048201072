/*
 * evtype.c - DM's binlog event type names (match.h): their classes, aliases, and the expansion
 * of group names such as "all dml" into the concrete names.
 */
#include "sdk_int.h"
#include "sluice/event.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* ---- event types ------------------------------------------------------------------------- */

/* DM's names (pkg/binlog-filter/filter.go), with their class; aliases point at their canonical
 * entry through `canon`. Order matters only for expansion output. */
typedef struct evt { const char *name; sl_event_class cls; const char *canon; } evt;

static const evt EVT[] = {
    { "all",                      SL_EVCLASS_GROUP, NULL },
    { "all dml",                  SL_EVCLASS_GROUP, NULL },
    { "all ddl",                  SL_EVCLASS_GROUP, NULL },
    { "none",                     SL_EVCLASS_GROUP, NULL },
    { "none dml",                 SL_EVCLASS_GROUP, NULL },
    { "none ddl",                 SL_EVCLASS_GROUP, NULL },
    { "incompatible ddl changes", SL_EVCLASS_GROUP, NULL },
    { "insert",                   SL_EVCLASS_DML, NULL },
    { "update",                   SL_EVCLASS_DML, NULL },
    { "delete",                   SL_EVCLASS_DML, NULL },
    { "create database",          SL_EVCLASS_DDL, NULL },
    { "alter database",           SL_EVCLASS_DDL, NULL },
    { "create table",             SL_EVCLASS_DDL, NULL },
    { "create index",             SL_EVCLASS_DDL, NULL },
    { "create view",              SL_EVCLASS_DDL, NULL },
    { "drop view",                SL_EVCLASS_DDL, NULL },
    { "alter table",              SL_EVCLASS_DDL, NULL },
    { "add table partition",      SL_EVCLASS_DDL, NULL },
    { "drop database",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop table",               SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "truncate table",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rename table",             SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop index",               SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop table partition",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "truncate table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "value range decrease",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "precision decrease",       SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify column",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rename column",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rename index",             SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop column",              SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop primary key",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop unique key",          SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify default value",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify constraint",        SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify columns order",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify charset",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify collation",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "remove auto increment",    SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify storage engine",    SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "reorganize table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rebuild table partition",  SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "coalesce table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "split table partition",    SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "exchange table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "add foreign key",          SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop foreign key",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify schema charset and collate", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify table charset and collate",  SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify table comment",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "recover table",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter table partitioning", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "remove table partitioning", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "add column",               SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "set default value",        SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rebase auto id",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "add primary key",          SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter index visibility",   SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter ttl info",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter ttl remove",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "multi schema change",      SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    /* aliases */
    { "create schema",            SL_EVCLASS_DDL, "create database" },
    { "alter schema",             SL_EVCLASS_DDL, "alter database" },
    { "drop schema",              SL_EVCLASS_INCOMPATIBLE_DDL, "drop database" },
};
#define NEVT (sizeof EVT / sizeof EVT[0])

int sl__evt_is_group(int i)
{
    return i >= 0 && (size_t)i < NEVT && EVT[i].cls == SL_EVCLASS_GROUP;
}

int sl__evt_index(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < NEVT; i++)
        if (strcasecmp(EVT[i].name, name) == 0) {
            if (EVT[i].canon)
                for (size_t j = 0; j < NEVT; j++)
                    if (strcmp(EVT[j].name, EVT[i].canon) == 0)
                        return (int)j;
            return (int)i;
        }
    return -1;
}

sl_event_class sl_event_type_class(const char *name)
{
    int i = sl__evt_index(name);
    return i < 0 ? SL_EVCLASS_UNKNOWN : EVT[i].cls;
}

const char *sl_event_type_canonical(const char *name)
{
    int i = sl__evt_index(name);
    return i < 0 ? NULL : EVT[i].name;
}

const char *sl_dml_event_type(int kind)
{
    switch (kind) {
    case SL_EV_INSERT: return "insert";
    case SL_EV_UPDATE: return "update";
    case SL_EV_DELETE: return "delete";
    }
    return NULL;
}

/* DM's matchEvent for one rule value against one event index: 1 selects, -1 stops the filter
 * ("none*" of the event's class), 0 says nothing. */
int sl__evt_covers(int rule, int ev)
{
    const char *r = EVT[rule].name;
    sl_event_class c = EVT[ev].cls;
    if (strcmp(r, "all") == 0)
        return 1;
    if (strcmp(r, "none") == 0)
        return -1;
    if (c == SL_EVCLASS_DDL || c == SL_EVCLASS_INCOMPATIBLE_DDL) {
        if (strcmp(r, "all ddl") == 0)
            return 1;
        if (strcmp(r, "none ddl") == 0)
            return -1;
    }
    if (c == SL_EVCLASS_DML) {
        if (strcmp(r, "all dml") == 0)
            return 1;
        if (strcmp(r, "none dml") == 0)
            return -1;
    }
    if (c == SL_EVCLASS_INCOMPATIBLE_DDL && strcmp(r, "incompatible ddl changes") == 0)
        return 1;
    return rule == ev;
}

int sl_event_type_expand(const char *value, const char **out, size_t max)
{
    int v = sl__evt_index(value);
    if (v < 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < NEVT; i++) {
        if (EVT[i].cls == SL_EVCLASS_GROUP || EVT[i].canon)
            continue;
        if (sl__evt_covers(v, (int)i) == 1) {
            if (n < max)
                out[n] = EVT[i].name;
            n++;
        }
    }
    return (int)n;
}
