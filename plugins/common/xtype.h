/*
 * xtype.h - the "extended" column types of MariaDB (type plugins such as INET6, INET4, UUID):
 * one row per type says how each phase moves it, so the next such type is one more row.
 *
 * What these types have in common (MariaDB KB "INET6", "INET4", "UUID Data Type"):
 *   - information_schema.COLUMNS.DATA_TYPE (and SHOW COLUMNS) name them ("inet6"), which is the
 *     key of the table;
 *   - a row event's TABLE_MAP does not: binlog_row_metadata=FULL describes the column as a
 *     BINARY(width) string (MYSQL_TYPE_STRING, collation 63) and the row image holds the binary
 *     form with its trailing 0x00 bytes stripped, as for BINARY(n). The binlog-reader's generic
 *     BINARY(n) rule pads it back, so these columns arrive as SL_V_BINARY of exactly width bytes;
 *   - the column accepts its binary form as a binary string of exactly width bytes (and its text
 *     form as a character string), so the sink's _binary literal of that value stores it and
 *     compares with it in WHERE, and LOAD DATA ... CHARACTER SET binary loads it;
 *   - its text form ("::1") read into a binary string is NOT accepted ("Incorrect inet6 value"):
 *     the dump therefore selects CAST(col AS BINARY(width)), the binary form, so both phases carry
 *     the same bytes (a Lua hook sees the same value in a chunk and in a row event).
 * So the sink needs no row of this table: it writes the binary value like any BINARY(n) value. A
 * value of another width (a Lua hook's text "::1" arrives as a character string and is accepted
 * as text) is refused by the server with the column named ("Incorrect inet6 value: ... for column
 * `s`.`t`.`c`"), which pauses the task with that message.
 * Pure, constant data: thread-safe.
 */
#ifndef SLUICE_XTYPE_H
#define SLUICE_XTYPE_H

#include <stdint.h>

typedef struct sl_xtype {
    const char *name;        /* DATA_TYPE as information_schema.COLUMNS reports it, lower case */
    uint8_t     mysql_type;  /* the type a row event's TABLE_MAP gives the column */
    uint32_t    width;       /* bytes of the binary form (the BINARY(width) of the row image) */
    const char *dump_cast;   /* what the dump CASTs the column to, so it reads the binary form */
    int         key_text;    /* chunk boundaries may be written as quoted text literals: the
                              * server converts them to the type and compares as the index orders */
} sl_xtype;

/* The extended type named data_type (case-insensitive), or NULL for any other type. */
const sl_xtype *sl_xtype_find(const char *data_type);

/* Every extended type, for documentation and tests: *n gets the count. */
const sl_xtype *sl_xtype_all(uint32_t *n);

#endif
