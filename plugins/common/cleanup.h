/*
 * cleanup.h - what the plugins' cleanup slot (plugin.h) shares: dropping a task's tables in the
 * target's meta schema, and removing a task's dump directory.
 */
#ifndef SLUICE_PLUGINS_CLEANUP_H
#define SLUICE_PLUGINS_CLEANUP_H

#include <mysql.h>
#include <sluice/err.h>

/* DROP TABLE IF EXISTS `<meta>`.`<task><suffix>` for each suffix of the NULL-terminated list.
 * Every table is tried; returns 0 or the first failure (err: the statement's server error). */
int sl_cleanup_meta_tables(MYSQL *db, const char *meta, const char *task,
                           const char *const *suffixes, sl_error *err);

/*
 * Remove a source's dump directory (sl_dump_dir: <data_dir>/<task>/<source>) with everything
 * under it (symbolic links are removed, never followed), then the task's directory when it is
 * left empty, and the `.<task>.deleted.*` directories older servers left behind when a crash
 * interrupted their removal. What does not exist is not an error; returns 0 or the first failure
 * (err names the path), after trying everything.
 */
int sl_cleanup_dump_dir(const char *source_dir, sl_error *err);

#endif
