#!/usr/bin/env python3
"""jsonl_replay.py - apply the JSON lines of jsonl-sink to a database, as SQL on stdout.

    jsonl_replay.py DIR TASK SOURCE [--schema NAME]   | mariadb ... (the target)

Reads DIR/TASK.SOURCE.NNNNNN.jsonl in order, each up to where the checkpoint DIR/TASK.SOURCE.checkpoint
says the durable part ends (the contract of docs/plugins.md#the-json-lines-sink), and prints
one statement per row change against target_schema.target_table (or --schema): INSERT with the
after image; UPDATE/DELETE keyed by the before image's primary key columns, which the tool
reads from the target's information_schema (every column, null-safe, LIMIT 1, for a table
without one); generated columns are left to the target to compute. DDL lines are skipped: the test creates the tables itself. Values are written as
exact literals: numbers as their text, strings as _utf8mb4 X'..', {"base64"} as X'..' (with the
charset introducer when the line names one). Stdlib only; the target is asked with the mariadb
client (MARIADB_ARGS, whitespace-separated).
"""
import base64
import json
import os
import re
import subprocess
import sys


def ident(name):
    return "`" + name.replace("`", "``") + "`"


def literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, Num):
        return str(v)
    if isinstance(v, str):
        return "_utf8mb4 X'" + v.encode("utf-8").hex() + "'"
    if isinstance(v, dict) and "base64" in v:
        raw = base64.b64decode(v["base64"])
        cs = v.get("charset")
        return ("_" + cs + " " if cs else "") + "X'" + raw.hex() + "'"
    raise ValueError("unexpected value %r" % (v,))


class Num(str):
    """A JSON number kept as its text (no float rounding on the way)."""


def ask(q):
    args = os.environ.get("MARIADB_ARGS", "").split()
    out = subprocess.run(["mariadb", "-N", "-B"] + args + ["-e", q], check=True,
                         capture_output=True, text=True).stdout
    return [c for c in out.split("\n") if c]


def table_info(schema, table, cache):
    """(primary key columns, generated columns) of a target table, asked once."""
    key = (schema, table)
    if key not in cache:
        where = ("TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s'"
                 % (schema.replace("'", "''"), table.replace("'", "''")))
        pk = ask("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE " + where +
                 " AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION")
        gen = ask("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE " + where +
                  " AND EXTRA LIKE '%GENERATED%'")
        cache[key] = (pk, set(gen))
    return cache[key]


def where(image, keys):
    cols = keys if keys else list(image)
    parts = [ident(c) + " <=> " + literal(image[c]) for c in cols]
    return " WHERE " + " AND ".join(parts) + ("" if keys else " LIMIT 1")


def main():
    argv = sys.argv[1:]
    schema_override = None
    if "--schema" in argv:
        i = argv.index("--schema")
        schema_override = argv[i + 1]
        del argv[i:i + 2]
    d, task, source = argv
    prefix = os.path.join(d, "%s.%s" % (task, source))
    with open(prefix + ".checkpoint") as f:
        ck = json.load(f)
    last_no, last_off = ck["file_no"], ck["offset"]
    names = sorted(n for n in os.listdir(d)
                   if re.fullmatch(re.escape("%s.%s" % (task, source)) + r"\.[0-9]{6}\.jsonl", n))
    cache = {}
    out = sys.stdout
    out.write("SET time_zone = '+00:00';\nSET sql_mode = 'NO_ENGINE_SUBSTITUTION';\n")
    for n in names:
        no = int(n.split(".")[-2])
        if no > last_no:
            break
        with open(os.path.join(d, n), "rb") as f:
            data = f.read()
        if no == last_no:
            data = data[:last_off]
        for line in data.decode("utf-8").splitlines():
            e = json.loads(line, parse_int=Num, parse_float=Num)
            if e["op"] == "ddl":
                continue
            schema = schema_override or e["target_schema"]
            t = ident(schema) + "." + ident(e["target_table"])
            keys, generated = table_info(schema, e["target_table"], cache)
            if e["op"] == "insert":
                a = {c: v for c, v in e["after"].items() if c not in generated}
                out.write("INSERT INTO %s (%s) VALUES (%s);\n" % (
                    t, ", ".join(ident(c) for c in a), ", ".join(literal(v) for v in a.values())))
            elif e["op"] == "update":
                a = {c: v for c, v in e["after"].items() if c not in generated}
                out.write("UPDATE %s SET %s%s;\n" % (
                    t, ", ".join(ident(c) + " = " + literal(v) for c, v in a.items()),
                    where(e["before"], keys)))
            elif e["op"] == "delete":
                out.write("DELETE FROM %s%s;\n" % (t, where(e["before"], keys)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
