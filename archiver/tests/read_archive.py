#!/usr/bin/env python3
"""Reads a flow archive with three independent Parquet readers and checks
row counts and values: DuckDB (hive partitioning), pyarrow.dataset, polars.

usage: read_archive.py DIR EXPECTED_ROWS EXPECTED_DROPPED
"""
import sys

import duckdb
import polars as pl
import pyarrow.dataset as ds

d, n, dropped = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
glob = f"{d}/**/*.parquet"

con = duckdb.connect()
rel = f"read_parquet('{glob}', hive_partitioning = true)"
assert con.execute(f"select count(*) from {rel}").fetchone()[0] == n
assert con.execute(f"select count(*) from {rel} where verdict = 'DROPPED'").fetchone()[0] == dropped
reasons = con.execute(f"select drop_reason_desc, count(*) from {rel} where verdict = 'DROPPED' group by 1").fetchall()
assert reasons == [("POLICY_DENIED", dropped)], reasons
dts = {r[0] for r in con.execute(f"select distinct cast(dt as varchar) || '/' || cast(hour as varchar) from {rel}").fetchall()}
assert dts, dts
row = con.execute(f"select uuid, source_namespace, destination_port, source_labels, protocol, tcp_flags from {rel} order by time limit 1").fetchone()
assert row[0].startswith("uuid-") and row[4] == "TCP" and row[5] == "SYN", row
assert con.execute(f"select count(distinct uuid) from {rel}").fetchone()[0] == n
df = con.execute(f"select time, verdict from {rel}").df()  # pandas
assert len(df) == n and str(df["time"].dtype).startswith("datetime64"), df.dtypes

t = ds.dataset(d, format="parquet", partitioning="hive").to_table()
assert t.num_rows == n, t.num_rows
md = ds.dataset(d, format="parquet", partitioning="hive").files
import pyarrow.parquet as pq
meta = pq.ParquetFile(md[0]).metadata.metadata or {}
assert meta.get(b"flow_archive.schema_version") == b"3", meta.get(b"flow_archive.schema_version")

p = pl.scan_parquet(glob, hive_partitioning=True).collect()
assert p.height == n, p.height
assert p.filter(pl.col("verdict") == "DROPPED").height == dropped

print(f"duckdb, pyarrow, polars: {n} rows, {dropped} dropped, partitions {sorted(dts)}")
