/*
 * memplugins.h - test-only in-process plugins (fluent-bit's lib input / callback output):
 * "mem-source" produces numbered INSERT events, "mem-xform" doubles a column, "mem-sink"
 * checks order and counts; their status() JSON reports what they saw.
 */
#ifndef SLUICE_TEST_MEMPLUGINS_H
#define SLUICE_TEST_MEMPLUGINS_H

#include "sluice/runtime.h"

extern const sl_plugin_descriptor sl_test_mem_source;
extern const sl_plugin_descriptor sl_test_mem_xform;
extern const sl_plugin_descriptor sl_test_mem_sink;

/* Register the three; returns 0 or asserts. */
int sl_test_register_mem(sl_registry *reg);

/* A linear spec "test/<name>": stages with (id, plugin, options) in order, edges i -> i+1.
 * Caller frees with sl_pipeline_spec_free. */
sl_pipeline_spec *sl_test_linear_spec(const char *name, size_t n, const char *const *ids,
                                      const char *const *plugins, const char *const *options);

/* Reads stages[idx].status.<key> (integer) from a pipeline's status JSON; -1 if absent. */
long long sl_test_status_int(sl_pipeline *p, size_t idx, const char *key);

#endif
