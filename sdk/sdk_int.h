/*
 * sdk_int.h - what the files of the SDK share and nothing outside sdk/ includes: the PCRE2
 * helpers behind name patterns, ignore_sql and sl_regex_check (regex.c).
 */
#ifndef SLUICE_SDK_INT_H
#define SLUICE_SDK_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

#include "sluice/match.h"

/* Compile a caseless UTF regex (JIT when available). Returns the code (caller frees with
 * pcre2_code_free) or NULL with err filled ("<PCRE2 message> at offset N"). Thread-safe. */
pcre2_code *sl__re_compile(const char *pat, size_t len, sl_error *err);

/* Unanchored search under the SDK's match limits with this thread's match data: 1 match,
 * 0 no match, SL_ELIMIT when a limit was hit, SL_ENOMEM. Thread-safe. */
int sl__re_search(const pcre2_code *re, const char *s, size_t len);

/* DM's event type names as indexes (evtype.c), for the compiled rules: the index of a name
 * (aliases resolved to their canonical entry), or -1; 1 if index i is a group name ("all dml").
 * sl__evt_covers: DM's matchEvent of the filter value at index rule against the event at index
 * ev: 1 selects, -1 stops the filter ("none*" of the event's class), 0 says nothing. */
int sl__evt_index(const char *name);
int sl__evt_is_group(int i);
int sl__evt_covers(int rule, int ev);

#endif
