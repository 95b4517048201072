/*
 * xtype.c - the table of MariaDB's extended column types (see xtype.h for what each field means
 * and why the binary form is what travels).
 */
#include "xtype.h"

#include <stddef.h>
#include <strings.h>

#define MT_STRING 254   /* MYSQL_TYPE_STRING: BINARY(n) in a TABLE_MAP */

static const sl_xtype types[] = {
    /* MariaDB 10.5+: 16 bytes, network byte order (IPv4 addresses mapped as ::ffff:a.b.c.d) */
    { .name = "inet6", .mysql_type = MT_STRING, .width = 16, .dump_cast = "BINARY(16)", .key_text = 1 },
    /* MariaDB 10.10+: 4 bytes, network byte order */
    { .name = "inet4", .mysql_type = MT_STRING, .width = 4, .dump_cast = "BINARY(4)", .key_text = 1 },
    /* MariaDB 10.7+: 16 bytes; the server may store the segments of some versions swapped for
     * index order, but both CAST(.. AS BINARY) and the row image give the RFC 4122 byte order */
    { .name = "uuid", .mysql_type = MT_STRING, .width = 16, .dump_cast = "BINARY(16)", .key_text = 1 },
};

const sl_xtype *sl_xtype_find(const char *data_type)
{
    for (uint32_t i = 0; data_type && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(types[i].name, data_type) == 0)
            return &types[i];
    return NULL;
}

const sl_xtype *sl_xtype_all(uint32_t *n)
{
    *n = (uint32_t)(sizeof types / sizeof types[0]);
    return types;
}
