/*
 * spec.c - pipeline specs (pipeline.h): stage names and freeing a spec built by the compiler.
 */
#include "sluice/pipeline.h"

#include <stdlib.h>

const char *sl_stage_name(sl_stage s)
{
    switch (s) {
    case SL_STAGE_NEW:      return "New";
    case SL_STAGE_RUNNING:  return "Running";
    case SL_STAGE_PAUSED:   return "Paused";
    case SL_STAGE_STOPPED:  return "Stopped";
    case SL_STAGE_FINISHED: return "Finished";
    }
    return "Unknown";
}

void sl_pipeline_spec_free(sl_pipeline_spec *spec)
{
    if (!spec)
        return;
    for (size_t i = 0; i < spec->nstages; i++) {
        free(spec->stages[i].id);
        free(spec->stages[i].plugin);
        free(spec->stages[i].options_json);
    }
    free(spec->stages);
    free(spec->edges);
    free(spec->name);
    free(spec);
}
