/*
 * value.h - typed column values as they travel through a pipeline.
 *
 * A value is a small tagged struct (40 bytes on 64-bit). Variable-length payloads (strings, binary, decimal
 * text, JSON text, geometry) point into memory owned by the batch that holds the value; a value
 * never owns memory itself. Every MariaDB column type maps to exactly one sl_vtype, losslessly.
 */
#ifndef SLUICE_VALUE_H
#define SLUICE_VALUE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_vtype {
    SL_V_NULL = 0,
    SL_V_INT,        /* signed integer of any width: v.i */
    SL_V_UINT,       /* unsigned integer of any width: v.u */
    SL_V_FLOAT,      /* FLOAT: v.f (formatted with 9 significant digits it round-trips) */
    SL_V_DOUBLE,     /* DOUBLE: v.d (17 significant digits round-trip) */
    SL_V_DECIMAL,    /* DECIMAL: exact text in v.s/len, e.g. "-12.3400" (scale kept) */
    SL_V_DATE,       /* DATE: v.t (year, month, day) */
    SL_V_TIME,       /* TIME: v.t (neg, hour up to 838, minute, second, usec, dec) */
    SL_V_DATETIME,   /* DATETIME: v.t (all fields but neg) */
    SL_V_TIMESTAMP,  /* TIMESTAMP: v.ts seconds since the epoch (UTC) + usec; dec in .dec */
    SL_V_YEAR,       /* YEAR: v.i (0 or 1901..2155) */
    SL_V_STRING,     /* character data: v.s/len in the column's charset (collation id in .charset) */
    SL_V_BINARY,     /* BINARY/VARBINARY/BLOB bytes: v.s/len, may hold NUL bytes */
    SL_V_JSON,       /* JSON as text. MariaDB's JSON is a LONGTEXT and arrives as SL_V_STRING; MySQL's
                      * binary JSON is refused by the binlog-reader for now (SL_ENOTSUP) */
    SL_V_BIT,        /* BIT(n): v.u, .bits = n */
    SL_V_ENUM,       /* ENUM: v.e.u = 1-based index (0 = ''), v.e.s/len = the label if known */
    SL_V_SET,        /* SET: v.e.u = bit mask, v.e.s/len = comma-joined labels if known */
    SL_V_GEOMETRY,   /* GEOMETRY: v.s/len = MySQL internal format (4-byte SRID + WKB) */
    SL_V__COUNT
} sl_vtype;

/* Broken-down date and time. TIME uses neg and an hour that may exceed 23. */
typedef struct sl_temporal {
    int32_t  year;
    uint8_t  month, day, minute, second;
    uint32_t hour;
    uint32_t usec;      /* 0..999999 */
    uint8_t  neg;       /* TIME only: 1 if negative */
} sl_temporal;

typedef struct sl_value {
    uint8_t  type;      /* sl_vtype */
    uint8_t  dec;       /* fractional-second digits (0..6) for temporal types; scale for DECIMAL */
    uint8_t  bits;      /* BIT width (1..64) */
    uint8_t  _pad;
    uint16_t charset;   /* collation id (MySQL numbering) for SL_V_STRING/SL_V_JSON; 63 = binary */
    uint16_t _pad2;
    uint32_t len;       /* length of v.s (or v.e.s) in bytes */
    union {
        int64_t  i;
        uint64_t u;
        double   d;
        float    f;
        const char *s;
        sl_temporal t;
        struct { int64_t sec; uint32_t usec; } ts;
        struct { uint64_t u; const char *s; } e;
    } v;
} sl_value;

/* Convenience constructors for fixed-size values (no memory involved). */
static inline sl_value sl_value_null(void) { sl_value x = {0}; x.type = SL_V_NULL; return x; }
static inline sl_value sl_value_int(int64_t i) { sl_value x = {0}; x.type = SL_V_INT; x.v.i = i; return x; }
static inline sl_value sl_value_uint(uint64_t u) { sl_value x = {0}; x.type = SL_V_UINT; x.v.u = u; return x; }
static inline sl_value sl_value_double(double d) { sl_value x = {0}; x.type = SL_V_DOUBLE; x.v.d = d; return x; }
/* Strings and other payloads: s must stay valid as long as the value (normally batch memory). */
static inline sl_value sl_value_str(sl_vtype t, const char *s, uint32_t len, uint16_t charset)
{
    sl_value x = {0};
    x.type = (uint8_t)t; x.v.s = s; x.len = len; x.charset = charset;
    return x;
}

#ifdef __cplusplus
}
#endif
#endif
