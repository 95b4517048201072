#!/usr/bin/env bash
# bench/binlog_decode/run.sh - the binlog-reader's decode rate alone (events/s, rows/s, MB/s
# with no network and no sink).
#   run.sh [BINLOG_FILE...]   decode these files (e.g. the binlogs bench/incremental.sh produced)
#   run.sh                    generate a write workload on the sandbox source (sysbench-like rows:
#                             N single-row insert/update/delete transactions, default 100000)
#                             and decode the binlog it wrote
# Environment: SLUICE_BUILD (default <repo>/build), N, ROUNDS (default 3), sandbox variables.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
BIN=$BUILD/bin/sluice-bench-binlog-decode
[ -x "$BIN" ] || cmake --build "$BUILD" --target sluice-bench-binlog-decode >/dev/null
ROUNDS=${ROUNDS:-3}
if [ $# -gt 0 ]; then
    exec "$BIN" -n "$ROUNDS" "$@"
fi
N=${N:-100000}
eval "$("$ROOT/scripts/sandbox" env)"
sql() { "$ROOT/scripts/sandbox" sql source "$@"; }
sql -e "DROP DATABASE IF EXISTS sbbench; CREATE DATABASE sbbench;
  CREATE TABLE sbbench.sbtest1 (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL,
  pad CHAR(60) NOT NULL, KEY k_1 (k)); FLUSH BINARY LOGS;"
# One statement per transaction, as oltp_write_only mostly does (autocommit).
{
  echo "USE sbbench;"
  for ((i = 1; i <= N; i++)); do
      case $((i % 4)) in
      0) echo "UPDATE sbtest1 SET k = k + 1 WHERE id = $((i / 2));" ;;
      1|2) echo "INSERT INTO sbtest1 VALUES ($i, $i, REPEAT('c', 119), REPEAT('p', 59));" ;;
      3) echo "UPDATE sbtest1 SET c = REPEAT('u', 119) WHERE id = $((i - 1));" ;;
      esac
  done
} | sql
first=$(sql -N -e "SHOW BINARY LOGS" | tail -1 | cut -f1)
sql -e "FLUSH BINARY LOGS"
"$BIN" -n "$ROUNDS" "$SLUICE_SANDBOX_DIR/source.data/$first"
