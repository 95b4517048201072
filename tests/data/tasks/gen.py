#!/usr/bin/env python3
# gen.py - writes the generated part of the task corpus: good/*.json (valid tasks) and
# bad/*.json + bad/*.expect (one invalid task each; .expect lines are "PATH CODE [text]": every
# line must match an error the compiler reports). The seed examples are kept by hand.
# Run from this directory: ./gen.py
import copy, json, os

BASE = {
    "name": "task-1",
    "task_mode": "all",
    "shard_mode": "pessimistic",
    "meta_schema": "dm_meta",
    "enhance_online_schema_change": True,
    "on_duplicate": "overwrite",
    "target_config": {"host": "127.0.0.1", "port": 4000, "user": "root", "password": "secret"},
    "binlog_filter_rule": {
        "rule-1": {"ignore_event": ["all dml"], "ignore_sql": ["^Drop"]},
        "rule-2": {"ignore_event": ["truncate table", "drop database"], "ignore_sql": []},
    },
    "table_migrate_rule": [
        {"source": {"source_name": "mysql-01", "schema": "db-*", "table": "tb-*"},
         "target": {"schema": "db1", "table": "tb1"}, "binlog_filter_rule": ["rule-1"]},
    ],
    "source_config": {
        "full_migrate_conf": {"export_threads": 4, "import_threads": 16,
                              "data_dir": "./exported_data", "consistency": "auto"},
        "incr_migrate_conf": {"repl_threads": 16, "repl_batch": 100},
        "source_conf": [{"source_name": "mysql-01", "binlog_name": "binlog.000001", "binlog_pos": 4}],
    },
}

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
UUID1 = "03fc0263-28c7-11e7-a653-6c0b84d59f30"
UUID2 = "05474d3c-28c7-11e7-8352-203db246dd3d"


def t(**kw):
    return copy.deepcopy(BASE)


def put(d, path, value):
    """Set (or with value DEL delete) a member given as 'a/b/0/c'."""
    keys = path.split("/")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    k = keys[-1]
    if isinstance(d, list):
        k = int(k)
    if value is DEL:
        del d[k]
    elif isinstance(d, list) and k == len(d):
        d.append(value)
    else:
        d[k] = value


DEL = object()


def variant(changes):
    d = copy.deepcopy(BASE)
    for path, value in changes:
        put(d, path, value)
    return d


def write(dirname, name, doc, expect=None, sources=None, raw=None):
    with open(os.path.join(dirname, name + ".json"), "w") as f:
        if raw is not None:
            f.write(raw)
        else:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if expect is not None:
        with open(os.path.join(dirname, name + ".expect"), "w") as f:
            for line in expect:
                f.write(line + "\n")
    if sources is not None:
        with open(os.path.join(dirname, name + ".sources.json"), "w") as f:
            json.dump(sources, f, indent=2)
            f.write("\n")


def incr(**conf):
    d = variant([("task_mode", "incremental")])
    d["source_config"]["source_conf"][0] = dict({"source_name": "mysql-01"}, **conf)
    return d


SRC_MYSQL = [{"source_name": "mysql-01", "host": "10.0.0.1", "port": 3306, "user": "dm",
              "password": "pw", "flavor": "mysql", "enable_gtid": True}]
SRC_MARIADB = [{"source_name": "mysql-01", "host": "10.0.0.1", "port": 3306, "user": "dm",
                "password": "pw", "flavor": "mariadb", "enable_gtid": False}]

# ---- good -----------------------------------------------------------------------------------
G = "good"
write(G, "base_all", BASE)
write(G, "wrapped", {"task": BASE})
minimal = {
    "name": "mini", "task_mode": "full",
    "target_config": {"host": "db", "port": 3306, "user": "u"},
    "table_migrate_rule": [{"source": {"source_name": "s1", "schema": "shop", "table": ""}}],
    "source_config": {"source_conf": [{"source_name": "s1"}]},
}
write(G, "minimal_full_defaults", minimal)
write(G, "incremental_binlog_pos", incr(binlog_name="mysql-bin.000042", binlog_pos=123456))
write(G, "incremental_mysql_gtid", incr(binlog_gtid="%s:1-7041423,\n%s:1-170:200-300" % (UUID1, UUID2)),
      sources=SRC_MYSQL)
write(G, "incremental_mariadb_gtid", incr(binlog_gtid="0-1-100,1-2-5", binlog_name="mysql-bin.000001"),
      sources=SRC_MARIADB)
write(G, "mode_dump", variant([("task_mode", "dump")]))
write(G, "mode_load", variant([("task_mode", "load")]))
multi = copy.deepcopy(BASE)
multi["table_migrate_rule"] = [
    {"source": {"source_name": "mysql-01", "schema": "shard_?", "table": "orders_[0-9]"},
     "target": {"schema": "shop", "table": "orders"}, "binlog_filter_rule": ["rule-1", "rule-2"]},
    {"source": {"source_name": "mysql-02", "schema": "shard_?", "table": "orders_[0-9]"},
     "target": {"schema": "shop", "table": "orders"}, "binlog_filter_rule": ["rule-2"]},
    {"source": {"source_name": "mysql-02", "schema": "logs", "table": ""}},
]
multi["source_config"]["source_conf"].append({"source_name": "mysql-02", "binlog_name": "mysql-bin.000007", "binlog_pos": 1024})
write(G, "two_sources_shard_merge", multi)
pats = variant([("shard_mode", DEL)])
pats["table_migrate_rule"] = [
    {"source": {"source_name": "mysql-01", "schema": "~^app_[0-9]+$", "table": ""},
     "target": {"schema": "app"}},
    {"source": {"source_name": "mysql-01", "schema": "crm", "table": "~^(customer|contact)s?$"}},
    {"source": {"source_name": "mysql-01", "schema": "crm", "table": "[!a-m]*"}},
    {"source": {"source_name": "mysql-01", "schema": "CRM_archive", "table": "*"}},
]
write(G, "patterns_regex_and_wildcards", pats)
ev = variant([("binlog_filter_rule", {
    "ddl": {"ignore_event": ["All DDL", "incompatible ddl changes", "create schema"], "ignore_sql": []},
    "sql": {"ignore_sql": ["^\\s*ALTER\\s+TABLE\\s+\\S+\\s+DROP", "(?i)^truncate", "OPTIMIZE"]},
    "mix": {"ignore_event": ["none", "insert", "update", "delete", "rename table", "drop index",
                             "create view", "drop view", "alter table", "create index"]},
})])
ev["table_migrate_rule"][0]["binlog_filter_rule"] = ["ddl", "sql", "mix"]
write(G, "filters_many_events", ev)
write(G, "tls_contents", variant([("target_config/security", {
    "ssl_ca_content": PEM, "ssl_cert_content": PEM, "ssl_key_content": KEY, "cert_allowed_cn": ["dm"]})]))
write(G, "known_sources", variant([]), sources=SRC_MYSQL)
write(G, "extras_checking_timezone_session", variant([
    ("ignore_checking_items", ["version", "binlog_db", "auto_increment_ID"]),
    ("timezone", "Asia/Shanghai"),
    ("target_config/session", {"foreign_key_checks": "1"}),
    ("strict_optimistic_shard_mode", False),
    ("shard_mode", "optimistic"),
    ("source_config/full_migrate_conf/import_mode", "logical"),
    ("source_config/full_migrate_conf/on_duplicate_logical", "error"),
    ("source_config/incr_migrate_conf/safe_mode", True),
    ("status_list", []),
]))

# ---- bad ------------------------------------------------------------------------------------
B = "bad"
bad = [
    ("missing_name", [("name", DEL)], ["/name 49102"]),
    ("name_with_space", [("name", "my task")], ["/name 49105"]),
    ("name_too_long", [("name", "t" * 44)], ["/name 49105"]),
    ("name_not_string", [("name", 42)], ["/name 49101"]),
    ("task_mode_unknown", [("task_mode", "fulll")], ["/task_mode 49103"]),
    ("task_mode_missing", [("task_mode", DEL)], ["/task_mode 49102"]),
    ("shard_mode_unknown", [("shard_mode", "pessimist")], ["/shard_mode 49103"]),
    ("on_duplicate_unknown", [("on_duplicate", "skip")], ["/on_duplicate 49103"]),
    ("consistency_unknown", [("source_config/full_migrate_conf/consistency", "weird")],
     ["/source_config/full_migrate_conf/consistency 49103"]),
    ("unknown_top_field_typo", [("task_mode", DEL), ("task_mod", "all")],
     ["/task_mod 49100 did you mean \"task_mode\"", "/task_mode 49102"]),
    ("unknown_filter_field", [("binlog_filter_rule/rule-1/ignore_events", ["insert"])],
     ["/binlog_filter_rule/rule-1/ignore_events 49100"]),
    ("unknown_target_field", [("table_migrate_rule/0/target/tabel", "x")],
     ["/table_migrate_rule/0/target/tabel 49100"]),
    ("filter_name_not_found", [("table_migrate_rule/0/binlog_filter_rule", ["rule-1", "rule-9"])],
     ["/table_migrate_rule/0/binlog_filter_rule/1 49001 rule-9"]),
    ("filter_map_missing", [("binlog_filter_rule", DEL)],
     ["/table_migrate_rule/0/binlog_filter_rule/0 49001"]),
    ("ignore_event_unknown", [("binlog_filter_rule/rule-1/ignore_event", ["all dml", "insrt"])],
     ["/binlog_filter_rule/rule-1/ignore_event/1 49110 insrt"]),
    ("ignore_event_not_string", [("binlog_filter_rule/rule-1/ignore_event", [7])],
     ["/binlog_filter_rule/rule-1/ignore_event/0 49101"]),
    ("ignore_sql_unclosed", [("binlog_filter_rule/rule-1/ignore_sql", ["^drop", "(foo"])],
     ["/binlog_filter_rule/rule-1/ignore_sql/1 49111 offset 4"]),
    ("ignore_sql_bad_quantifier", [("binlog_filter_rule/rule-2/ignore_sql", ["a{2,1}"])],
     ["/binlog_filter_rule/rule-2/ignore_sql/0 49111"]),
    ("filter_rule_not_object", [("binlog_filter_rule/rule-1", ["all dml"])],
     ["/binlog_filter_rule/rule-1 49101"]),
    ("schema_star_not_last", [("table_migrate_rule/0/source/schema", "*-db")],
     ["/table_migrate_rule/0/source/schema 49108 last character"]),
    ("table_class_unclosed", [("table_migrate_rule/0/source/table", "t[0-9")],
     ["/table_migrate_rule/0/source/table 49108"]),
    ("schema_regex_invalid", [("table_migrate_rule/0/source/schema", "~(a")],
     ["/table_migrate_rule/0/source/schema 49108"]),
    ("schema_empty", [("table_migrate_rule/0/source/schema", "")],
     ["/table_migrate_rule/0/source/schema 49108"]),
    ("rule_without_source", [("table_migrate_rule/0/source", DEL)],
     ["/table_migrate_rule/0/source 49102"]),
    ("rule_not_object", [("table_migrate_rule", ["db.t"])], ["/table_migrate_rule/0 49101"]),
    ("target_table_without_schema", [("table_migrate_rule/0/target", {"table": "tb1"})],
     ["/table_migrate_rule/0/target 49117"]),
    ("target_schema_wildcard", [("table_migrate_rule/0/target/schema", "db_*")],
     ["/table_migrate_rule/0/target/schema 49117"]),
    ("export_threads_zero", [("source_config/full_migrate_conf/export_threads", 0)],
     ["/source_config/full_migrate_conf/export_threads 49104"]),
    ("export_threads_huge", [("source_config/full_migrate_conf/export_threads", 5000)],
     ["/source_config/full_migrate_conf/export_threads 49104"]),
    ("export_threads_string", [("source_config/full_migrate_conf/export_threads", "4")],
     ["/source_config/full_migrate_conf/export_threads 49101"]),
    ("import_threads_negative", [("source_config/full_migrate_conf/import_threads", -1)],
     ["/source_config/full_migrate_conf/import_threads 49104"]),
    ("repl_threads_zero", [("source_config/incr_migrate_conf/repl_threads", 0)],
     ["/source_config/incr_migrate_conf/repl_threads 49104"]),
    ("repl_batch_zero", [("source_config/incr_migrate_conf/repl_batch", 0)],
     ["/source_config/incr_migrate_conf/repl_batch 49104"]),
    ("repl_batch_huge", [("source_config/incr_migrate_conf/repl_batch", 1000000)],
     ["/source_config/incr_migrate_conf/repl_batch 49104"]),
    ("repl_threads_fraction", [("source_config/incr_migrate_conf/repl_threads", 1.5)],
     ["/source_config/incr_migrate_conf/repl_threads 49101"]),
    ("safe_mode_not_bool", [("source_config/incr_migrate_conf/safe_mode", 1)],
     ["/source_config/incr_migrate_conf/safe_mode 49101"]),
    ("binlog_pos_below_4", [("source_config/source_conf/0/binlog_pos", 3)],
     ["/source_config/source_conf/0/binlog_pos 49104"]),
    ("binlog_pos_without_name", [("source_config/source_conf/0/binlog_name", DEL)],
     ["/source_config/source_conf/0/binlog_pos 49113"]),
    ("binlog_name_malformed", [("source_config/source_conf/0/binlog_name", "binlog")],
     ["/source_config/source_conf/0/binlog_name 49113"]),
    ("gtid_mysql_zero_interval", [("source_config/source_conf/0/binlog_gtid", UUID1 + ":0-5")],
     ["/source_config/source_conf/0/binlog_gtid 49112"]),
    ("gtid_mysql_reversed_interval", [("source_config/source_conf/0/binlog_gtid", UUID1 + ":9-5")],
     ["/source_config/source_conf/0/binlog_gtid 49112"]),
    ("gtid_garbage", [("source_config/source_conf/0/binlog_gtid", "abc")],
     ["/source_config/source_conf/0/binlog_gtid 49112"]),
    ("gtid_mariadb_duplicate_domain", [("source_config/source_conf/0/binlog_gtid", "0-1-5,0-2-7")],
     ["/source_config/source_conf/0/binlog_gtid 49112 domain 0"]),
    ("source_conf_duplicate", [("source_config/source_conf/1", {"source_name": "mysql-01"})],
     ["/source_config/source_conf/1/source_name 49106"]),
    ("source_conf_empty", [("source_config/source_conf", [])], ["/source_config/source_conf 49102"]),
    ("source_conf_missing", [("source_config/source_conf", DEL)], ["/source_config/source_conf 49102"]),
    ("rules_empty", [("table_migrate_rule", [])], ["/table_migrate_rule 49102"]),
    ("target_config_missing", [("target_config", DEL)], ["/target_config 49102"]),
    ("target_port_out_of_range", [("target_config/port", 70000)], ["/target_config/port 49104"]),
    ("target_port_string", [("target_config/port", "3306")], ["/target_config/port 49101"]),
    ("target_host_missing", [("target_config/host", DEL)], ["/target_config/host 49102"]),
    ("target_ca_is_a_path", [("target_config/security", {"ssl_ca_content": "/etc/ssl/ca.pem",
                                                         "ssl_cert_content": "", "ssl_key_content": ""})],
     ["/target_config/security/ssl_ca_content 49119"]),
    ("target_session_fk_unknown", [("target_config/session", {"foreign_key_checks": "2"})],
     ["/target_config/session/foreign_key_checks 49103"]),
    ("meta_schema_empty", [("meta_schema", "")], ["/meta_schema 49105"]),
    ("meta_schema_too_long", [("meta_schema", "m" * 65)], ["/meta_schema 49105"]),
    ("import_mode_physical", [("source_config/full_migrate_conf/import_mode", "physical")],
     ["/source_config/full_migrate_conf/import_mode 49116"]),
    ("data_dir_s3", [("source_config/full_migrate_conf/data_dir", "s3://bucket/prefix")],
     ["/source_config/full_migrate_conf/data_dir 49116"]),
    ("unknown_checking_item", [("ignore_checking_items", ["version", "versions"])],
     ["/ignore_checking_items/1 49103"]),
    ("eosc_not_bool", [("enhance_online_schema_change", "yes")],
     ["/enhance_online_schema_change 49101"]),
    ("timezone_malformed", [("timezone", "Asia Shanghai")], ["/timezone 49105"]),
    ("on_duplicate_logical_overwrite", [("source_config/full_migrate_conf/on_duplicate_logical", "overwrite")],
     ["/source_config/full_migrate_conf/on_duplicate_logical 49103"]),
    ("many_errors_at_once", [("name", "bad name!"), ("task_mode", "sync"),
                             ("binlog_filter_rule/rule-1/ignore_sql", ["[z-a]"]),
                             ("source_config/incr_migrate_conf/repl_batch", -5),
                             ("table_migrate_rule/0/sourse", {})],
     ["/name 49105", "/task_mode 49103", "/binlog_filter_rule/rule-1/ignore_sql/0 49111",
      "/source_config/incr_migrate_conf/repl_batch 49104", "/table_migrate_rule/0/sourse 49100"]),
]
for name, changes, expect in bad:
    write(B, name, variant(changes), expect)

# overlapping rules (same level, same source)
ov = copy.deepcopy(BASE)
ov["table_migrate_rule"].append({"source": {"source_name": "mysql-01", "schema": "db-1", "table": "tb-7"},
                                 "target": {"schema": "x", "table": "y"}})
write(B, "overlap_exact_in_wildcard", ov, ["/table_migrate_rule/1/source 49109"])
ov = copy.deepcopy(BASE)
ov["table_migrate_rule"] = [
    {"source": {"source_name": "mysql-01", "schema": "app_*", "table": ""}},
    {"source": {"source_name": "mysql-01", "schema": "app_1*", "table": ""}, "target": {"schema": "a1"}},
]
write(B, "overlap_schema_prefixes", ov, ["/table_migrate_rule/1/source 49109"])
ov = copy.deepcopy(BASE)
ov["table_migrate_rule"] = [
    {"source": {"source_name": "mysql-01", "schema": "Shop", "table": "Orders"}},
    {"source": {"source_name": "mysql-01", "schema": "shop", "table": "orders"}, "binlog_filter_rule": ["rule-2"]},
]
write(B, "overlap_same_table_case", ov, ["/table_migrate_rule/1/source 49109"])

# start positions
write(B, "incremental_without_start", incr(), ["/source_config/source_conf/0 20022"])
write(B, "incremental_gtid_without_enable_gtid", incr(binlog_gtid="0-1-100"),
      ["/source_config/source_conf/0 20022"], sources=SRC_MARIADB)
write(B, "gtid_mysql_syntax_on_mariadb", incr(binlog_gtid=UUID1 + ":1-5", binlog_name="mysql-bin.000001"),
      ["/source_config/source_conf/0/binlog_gtid 49112 mariadb"], sources=SRC_MARIADB)
write(B, "source_not_registered", variant([]),
      ["/source_config/source_conf/0/source_name 46008 mysql-01"],
      sources=[dict(SRC_MYSQL[0], source_name="mysql-99")])

# wrapping and document shape
write(B, "wrapped_bad_enum", {"task": variant([("task_mode", "everything")])}, ["/task/task_mode 49103"])
write(B, "wrapped_extra_root_field", None, ["/extra 49100"],
      raw=json.dumps({"task": BASE, "extra": 1}, indent=2) + "\n")
write(B, "wrapped_task_not_object", None, ["/task 49101"], raw='{"task": "task-1"}\n')
write(B, "not_an_object", None, ["/ 49101"], raw="[1, 2, 3]\n")
write(B, "json_empty", None, ["/ 20005 line 1"], raw="")
write(B, "json_duplicate_key", None, ["/ 20005 duplicate"],
      raw='{\n  "name": "a",\n  "name": "b"\n}\n')
write(B, "json_trailing_comma_object", None, ["/ 20005 line 3, column 1"],
      raw='{\n  "name": "a",\n}\n')
write(B, "json_unquoted_key", None, ["/ 20005 line 2, column 3"], raw='{\n  name: "a"\n}\n')
with open(os.path.join(B, "json_invalid_utf8.json"), "wb") as f:
    f.write(b'{"name": "\xff\xfe"}\n')
with open(os.path.join(B, "json_invalid_utf8.expect"), "w") as f:
    f.write("/ 20005\n")

# Lua scripts (sluice's extension)
lua = copy.deepcopy(BASE)
lua["lua_scripts"] = [{"tables": [{"schema": "db-*", "table": "*"}], "source": "function on_row(ev)\n  return true\nend end\n"}]
write(B, "lua_syntax_error", lua, ["/lua_scripts/0/source 49115"])
lua = copy.deepcopy(BASE)
lua["lua_scripts"] = [{"tables": [{"schema": "db-*", "table": "*"}], "source": "function other() end\n"}]
write(B, "lua_entry_missing", lua, ["/lua_scripts/0/source 49115 on_row"])
lua = copy.deepcopy(BASE)
lua["lua_scripts"] = [{"tables": [{"schema": "db-*"}]}]
write(B, "lua_no_code", lua, ["/lua_scripts/0 49115 neither"])
lua = copy.deepcopy(BASE)
lua["lua_scripts"] = [{"tables": [{"schema": "db-*"}], "file": "no/such/script.lua"}]
write(B, "lua_file_missing", lua, ["/lua_scripts/0/file 49115"])
lua = copy.deepcopy(BASE)
lua["lua_scripts"] = [{"tables": [{"source_name": "mysql-77", "schema": "*-x"}], "source": "function on_row(e) end"}]
write(B, "lua_tables_bad", lua, ["/lua_scripts/0/tables/0/source_name 49107",
                                 "/lua_scripts/0/tables/0/schema 49108"])

# Lua scripts that compile: inline, and a file relative to the task file
lua = copy.deepcopy(BASE)
lua["lua_scripts"] = [{"tables": [{"schema": "db-*", "table": "tb-*"}],
                       "source": "function on_row(ev)\n  return ev.type ~= 'delete'\nend\n"}]
write(G, "lua_inline", lua)
lua = copy.deepcopy(BASE)
lua["lua_scripts"] = [{"tables": [{"source_name": "mysql-01", "schema": "db-*", "table": "*"}],
                       "file": "../scripts/mask_email.lua", "on_row": "on_row", "on_ddl": "on_ddl"}]
write(G, "lua_file", lua)
