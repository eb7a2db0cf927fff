"""Benchmark of issue 21 (run by scripts/bench-scale): rows/s of meterkit.spark.rollup on Spark
local[2] and meterkit.dask.rollup on a 2-worker Dask LocalCluster against rollup_arrow (and
partial_rollup) in one process, on the same generated files in the same run, and bytes of partial
state per bucket. On 2 cores this measures overhead, not speed-up."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import meterkit as mk
import meterkit.dask
import meterkit.spark

from scaledata import SPEC, TENANTS, generate, imported, query_json, reference

N = int(os.environ.get("METERKIT_SCALE_RECORDS", "2000000"))


def timed(f):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = f()
    secs = time.perf_counter() - t
    print(f"  step done in {secs:.1f} s", file=sys.stderr, flush=True)
    return out, secs


def ipc_bytes(t: pa.Table) -> int:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return sink.getvalue().size


def main() -> None:
    out: dict[str, object] = {"records": N}
    with tempfile.TemporaryDirectory() as tmp:
        files, secs = timed(lambda: generate(N, Path(tmp) / "usage"))
        out["generate_s"] = round(secs, 1)
        table = pa.concat_tables([pq.read_table(p) for p in files])
        _, secs = timed(lambda: mk.rollup_arrow(table, SPEC))
        out["rollup_arrow_rows_per_s"] = round(N / secs)
        partial, secs = timed(lambda: mk.partial_rollup(table, SPEC))
        out["partial_rollup_one_process_rows_per_s"] = round(N / secs)
        engine = reference(files)
        expected = {t: query_json(engine, t) for t in TENANTS}

        from pyspark.sql import SparkSession

        os.environ["PYSPARK_PYTHON"] = sys.executable
        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "2g")
            .getOrCreate()
        )
        spark.read.parquet(str(files[0])).count()  # JVM warm-up outside the timing
        merged, secs = timed(lambda: meterkit.spark.rollup(spark.read.parquet(*map(str, files)), SPEC).toArrow())
        out["spark_local2_rows_per_s"] = round(N / secs)
        out["spark_equal_to_one_engine"] = all(query_json(imported(merged), t) == expected[t] for t in TENANTS)
        spark.stop()

        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster):
                pdf, secs = timed(lambda: meterkit.dask.rollup(dd.read_parquet(list(map(str, files))), SPEC).compute())
        out["dask_2workers_rows_per_s"] = round(N / secs)
        dmerged = pa.Table.from_pandas(pdf, schema=mk.partial_schema(SPEC), preserve_index=False)
        out["dask_equal_to_one_engine"] = all(query_json(imported(dmerged), t) == expected[t] for t in TENANTS)

        out["buckets"] = merged.num_rows
        out["partial_arrow_bytes_per_bucket"] = round(merged.nbytes / merged.num_rows)
        out["partial_ipc_bytes_per_bucket"] = round(ipc_bytes(merged) / merged.num_rows)
        out["unique_subject_values_per_bucket"] = round(
            sum(len(v) for v in merged["unique_subject"].to_pylist()) / merged.num_rows
        )
        out["one_partition_partial_rows"] = partial.num_rows
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
