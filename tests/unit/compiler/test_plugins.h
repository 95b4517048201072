/*
 * test_plugins.h - test-only plugin descriptors that declare the option tables of PLUGINS.md
 * (no behaviour), so the compiler can be tested and fuzzed without loading shared objects.
 */
#ifndef SLUICE_TEST_PLUGINS_H
#define SLUICE_TEST_PLUGINS_H

#include "sluice/runtime.h"

/* Register the seven descriptors into reg. Returns 0 or a negative code. */
int sl_test_plugins_register(sl_registry *reg, sl_error *err);

#endif
