/*
 * format.h - the jsonl-sink's pure step: one change event as one line of JSON (no I/O), so the
 * encoding of every value type is tested without a server or a file.
 */
#ifndef SLUICE_JSONL_FORMAT_H
#define SLUICE_JSONL_FORMAT_H

#include <sluice/plugin.h>

#include "myconn.h"   /* sl_sbuf */

/*
 * Append the line of event e (insert, update, delete or DDL; other kinds append nothing and
 * return 0) to b, with its trailing '\n'. Returns 1 when a line was appended, 0 when the kind
 * has no line, SL_ENOMEM when b ran out of memory. Thread-safe (b is the caller's).
 *
 * The line (keys in this order; docs/plugins.md#the-json-lines-sink documents each):
 *   {"seq":N,"file":"mysql-bin.000003","pos":1234,"gtid":"0-1-42","ts":1700000000,
 *    "op":"insert|update|delete|ddl","schema":..,"table":..,"target_schema":..,"target_table":..,
 *    "before":{col: value, ...},"after":{...}}            (DDL: "ddl":text,"ddl_schema":..)
 * Values: NULL null; integers, YEAR and BIT as JSON numbers (exact digits, 64 bits);
 * FLOAT with 9 and DOUBLE with 17 significant digits (they round-trip); DECIMAL as a string
 * with its scale ("-12.3400"); DATE "YYYY-MM-DD", TIME "[-]HH:MM:SS[.f]", DATETIME
 * "YYYY-MM-DD HH:MM:SS[.f]" and TIMESTAMP the same in UTC, fractions with the column's digits;
 * character data in utf8mb3/utf8mb4/ascii as JSON strings; ENUM and SET as their labels (the
 * index or bit mask as a number when the label is unknown); binary strings, geometry and
 * character data of any other charset as {"base64":"..."} (plus "charset":"latin1" for the
 * latter), the bytes as stored.
 */
int sl_jsonl_format(sl_sbuf *b, const sl_event *e);

/* A JSON string literal of s (len bytes, valid UTF-8 expected; invalid bytes become U+FFFD). */
void sl_jsonl_add_string(sl_sbuf *b, const char *s, size_t len);

#endif
