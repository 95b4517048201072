/*
 * sqlfmt.h - typed values (value.h) to exact SQL literal text, for sinks that build statements.
 *
 * Pure and server-free: the output is meant for a session with time_zone '+00:00' (TIMESTAMP
 * values are written in UTC) and any sql_mode. Every sl_vtype has one exact literal form.
 */
#ifndef SLUICE_SQLFMT_H
#define SLUICE_SQLFMT_H

#include <stdint.h>
#include <sluice/value.h>
#include <sluice/event.h>
#include "myconn.h"

/*
 * Append the SQL literal of v to b:
 *   NULL; integers in decimal; FLOAT with 9 and DOUBLE with the shortest of 15..17 significant
 *   digits that round-trips; DECIMAL text as is; DATE/TIME/DATETIME/TIMESTAMP quoted with their
 *   fractional digits (TIMESTAMP in UTC, 0 seconds = the zero timestamp); YEAR as a number;
 *   strings with a charset introducer (_utf8mb4'..' for ASCII-compatible charsets, _gbk X'..'
 *   for the others, plain X'..' when the collation is unknown); BINARY and GEOMETRY as X'..';
 *   JSON as a utf8mb4 string; BIT as b'..'; ENUM/SET by label when known, else by number.
 * Returns 0, SL_EINVAL for an unknown type or a DECIMAL text that is not a number, SL_ENOMEM when
 * b ran out of memory. Thread-safe.
 */
int sl_sqlfmt_value(sl_sbuf *b, const sl_value *v);

/* The character set name (e.g. "utf8mb4", "latin1") of a MySQL collation id, or NULL if unknown
 * or binary (63). Static string. Thread-safe. */
const char *sl_sqlfmt_charset_name(unsigned collation);

/* 1 if values of this collation compare case-insensitively (a _ci collation, by name). */
int sl_sqlfmt_collation_ci(unsigned collation);

/* The literal of v for comparing with the column's stored value (a WHERE that finds the row):
 * sl_sqlfmt_value, except that a FLOAT is written as the double it widens to. Its 9-digit text,
 * right for storing, is another value once the server compares both sides as doubles
 * (FLOAT 0.1 = 0.100000001 is false; = 0.10000000149011612 is true). */
int sl_sqlfmt_value_cmp(sl_sbuf *b, const sl_value *v);

#endif
