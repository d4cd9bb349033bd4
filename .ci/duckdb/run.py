"""Runs one SQL query in DuckDB over Parquet files, for ticklake's cross-checks and benchmarks.

    python run.py --parquet 'DIR/**/*.parquet' --view ticks --sql-file q.sql [--repeat N] [--threads T]

The files are exposed as the view `--view` (Hive partitions as columns). Prints one JSON object
per result row on stdout (timestamps as ISO-8601, floats exactly: repr round-trips), then one
line `{"timings_ms": [...]}` with the wall time of every run (the first is cold, the others hot).
"""

import argparse
import datetime
import decimal
import json
import sys
import time

import duckdb


def value(v):
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, float):
        # repr is the shortest string that round-trips: compared as f64 by the caller.
        return {"f64": repr(v)}
    return v


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--parquet", required=True)
    p.add_argument("--view", default="ticks")
    p.add_argument("--sql-file", required=True)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-rows", action="store_true", help="print only the timings")
    a = p.parse_args()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if a.threads:
        con.execute(f"SET threads = {a.threads}")
    glob = a.parquet.replace("'", "''")
    con.execute(
        f"CREATE VIEW {a.view} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false)"
    )
    sql = open(a.sql_file).read()
    timings = []
    rows = None
    for _ in range(max(1, a.repeat)):
        t = time.perf_counter()
        cur = con.execute(sql)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
        timings.append((time.perf_counter() - t) * 1000.0)
    if not a.no_rows:
        for r in rows:
            sys.stdout.write(json.dumps({n: value(v) for n, v in zip(names, r)}) + "\n")
    sys.stdout.write(json.dumps({"timings_ms": timings, "rows": len(rows), "version": duckdb.__version__}) + "\n")


if __name__ == "__main__":
    main()
