/*
 * pipeline.h - pipeline specs (what the compiler produces) and the runtime that runs them.
 *
 * A pipeline spec is a DAG of plugin instances with their options as JSON; a subtask is a
 * sequence of phases (task_mode "all" = the full DAG, then the incremental DAG). The core
 * runtime instantiates the plugins through the registry, connects stages with bounded queues
 * and runs them on threads owned by the scheduler.
 */
#ifndef SLUICE_PIPELINE_H
#define SLUICE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_stage_spec {
    char *id;            /* unique within the pipeline, e.g. "reader", "filter", "sink" */
    char *plugin;        /* plugin name, e.g. "binlog-reader" */
    char *options_json;  /* JSON object text validated against the plugin's option table */
} sl_stage_spec;

typedef struct sl_edge_spec { uint32_t from, to; } sl_edge_spec;   /* stage indexes */

typedef struct sl_pipeline_spec {
    char          *name;     /* "task/source/phase", used as log prefix */
    size_t         nstages;
    sl_stage_spec *stages;
    size_t         nedges;
    sl_edge_spec  *edges;
} sl_pipeline_spec;

/* Stages of a pipeline (and of a subtask), named as in DM's status. */
typedef enum sl_stage {
    SL_STAGE_NEW = 0,
    SL_STAGE_RUNNING,
    SL_STAGE_PAUSED,
    SL_STAGE_STOPPED,
    SL_STAGE_FINISHED
} sl_stage;

/* "New", "Running", "Paused", "Stopped", "Finished". */
const char *sl_stage_name(sl_stage s);

/* Free a spec built by the compiler (all strings and arrays); NULL is fine. */
void sl_pipeline_spec_free(sl_pipeline_spec *spec);

#ifdef __cplusplus
}
#endif
#endif
