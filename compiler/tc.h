/*
 * tc.h - private helpers of the task compiler: a JSON-pointer path that follows the walk through
 * the document, and typed member access that reports wrong types, missing and unknown fields.
 */
#ifndef SLUICE_TC_H
#define SLUICE_TC_H

#include <jansson.h>
#include <stddef.h>
#include "sluice/compiler.h"

typedef struct tc {
    sl_diags *d;
    char      path[4096];
    size_t    plen;
    int       oom;
} tc;

/* Kinds of values for tc_get: */
enum { TC_STR = 1, TC_INT, TC_BOOL, TC_OBJ, TC_ARR, TC_ANY };

/* Push a member key (escaped as JSON pointer) or an index; returns the previous length for tc_pop. */
size_t sl__tc_push(tc *c, const char *key);
size_t sl__tc_pushi(tc *c, size_t i);
void   sl__tc_pop(tc *c, size_t mark);

/* Report at the current path (or at path + "/key" when key is non-NULL). */
void sl__tc_err(tc *c, const char *key, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void sl__tc_warn(tc *c, const char *key, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Member key of obj with the given kind. null counts as absent. Absent + req: "is required";
 * wrong kind: "must be a ...". Returns the value or NULL. */
json_t *sl__tc_get(tc *c, json_t *obj, const char *key, int kind, int req);
/* Report every member of obj not in the NULL-terminated list allowed. */
void sl__tc_known(tc *c, json_t *obj, const char *const *allowed);
/* The one of names[0..n) that key most likely misspells, or NULL. */
const char *sl__tc_near(const char *key, const char *const *names, size_t n);
/* Name of a JSON value's type for messages ("a string", "a number", ...). */
const char *sl__tc_typename(const json_t *v);

/* Report a malformed-JSON error (jansson's), pointing at the offending token's line:column. */
void sl__tc_json_error(tc *c, const char *buf, size_t len, const json_error_t *je);

#endif
