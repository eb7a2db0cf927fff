"""Rollup benchmark: meterkit's columnar path against pandas, polars and duckdb.

The same records (1k tenants; int64 Wh quantities so every engine is exact) are written once as
Parquet, loaded into each library's native form (not timed), then rolled up per tenant into
  * "hourly-utc": hourly windows in UTC over 30 days, and
  * "daily-ny":   daily windows in America/New_York over a year (23/25-hour DST days),
computing sum, count, min and max per (tenant, window). Every engine's result is normalised to
(tenant, window start as UTC epoch seconds, sum, count, min, max) and must equal meterkit's.

Each measurement runs in its own process so thread limits (POLARS_MAX_THREADS, duckdb threads)
apply from the start. Usage:

    python benches/python/bench.py --rows 10000000 --out bench-out/python
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TENANTS = 1000


def perf(command: str) -> None:
    """With BENCH_PERF_CTL set to perf's control fifo (`perf record -D -1 --control fifo:PATH`),
    switch sampling on ("enable") or off ("disable"): profiles cover the timed part only."""
    ctl = os.environ.get("BENCH_PERF_CTL")
    if ctl:
        with open(ctl, "w") as fifo:
            fifo.write(command + "\n")
        time.sleep(0.05)  # let perf read it
DATASETS = {
    # name: (days of data, window, zone)
    "hourly-utc": (30, "hour", "UTC"),
    "daily-ny": (365, "day", "America/New_York"),
}


def generate(rows: int, days: int, path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(42)
    start = np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64)
    # Chronological arrival, like a meter feed: sorted timestamps, tenants interleaved.
    ts = np.sort(rng.integers(0, days * 86400, rows, dtype=np.int64)) + start
    tenant_idx = rng.integers(0, TENANTS, rows)
    tenants = np.array([f"t{i:04d}" for i in range(TENANTS)], dtype=object)
    table = pa.table(
        {
            "id": pa.array([f"r{i}" for i in range(rows)], pa.string()),
            "tenant": pa.array(tenants[tenant_idx], pa.string()),
            "quantity": pa.array(rng.integers(0, 5000, rows, dtype=np.int64)),
            "timestamp": pa.array(ts * 1_000_000, pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path, compression="zstd")


def checksum(rows: list[tuple[Any, ...]]) -> tuple[int, str]:
    rows = sorted(rows)
    h = hashlib.sha256()
    for r in rows:
        h.update(repr(r).encode())
    return len(rows), h.hexdigest()[:16]


def run_meterkit(
    path: Path, window: str, zone: str, threads: int, read_dictionary: list[str] | None = None, ids: bool = True
) -> tuple[float, list[tuple[Any, ...]]]:
    import pyarrow.parquet as pq

    import meterkit as mk

    table = pq.read_table(path, read_dictionary=read_dictionary)
    spec = mk.RollupSpec("wh", window, zone)
    perf("enable")
    t0 = time.perf_counter()
    out = mk.rollup_arrow(table, spec, threads=threads) if ids else mk.rollup_arrow(table, spec, threads=threads, id_column=None)
    elapsed = time.perf_counter() - t0
    perf("disable")
    t = out.to_pyarrow()
    rows = list(
        zip(
            t.column("tenant").to_pylist(),
            [int(x.timestamp()) for x in t.column("window_start").to_pylist()],
            [int(x) for x in t.column("sum").to_pylist()],
            t.column("count").to_pylist(),
            [int(x) for x in t.column("min").to_pylist()],
            [int(x) for x in t.column("max").to_pylist()],
        )
    )
    return elapsed, rows


def run_meterkit_dict(path: Path, window: str, zone: str, threads: int) -> tuple[float, list[tuple[Any, ...]]]:
    """meterkit with the tenant column read as an Arrow dictionary (categorical): codes, no strings."""
    return run_meterkit(path, window, zone, threads, read_dictionary=["tenant"])


def run_meterkit_no_ids(path: Path, window: str, zone: str, threads: int) -> tuple[float, list[tuple[Any, ...]]]:
    """meterkit without the id column (`id_column=None`): ids only break ties of `latest`, which
    no other engine here computes; without them the integer kernel's specialised loop runs."""
    return run_meterkit(path, window, zone, threads, ids=False)


def run_pandas(path: Path, window: str, zone: str, threads: int) -> tuple[float, list[tuple[Any, ...]]]:
    import pandas as pd

    df = pd.read_parquet(path, columns=["tenant", "quantity", "timestamp"])
    t0 = time.perf_counter()
    ts = df["timestamp"].dt.tz_convert(zone) if zone != "UTC" else df["timestamp"]
    freq = "h" if window == "hour" else "D"
    g = df.assign(timestamp=ts).groupby(["tenant", pd.Grouper(key="timestamp", freq=freq)])["quantity"]
    res = g.agg(["sum", "count", "min", "max"])
    res = res[res["count"] > 0]
    elapsed = time.perf_counter() - t0
    res = res.reset_index()
    starts = res["timestamp"].dt.tz_convert("UTC").dt.as_unit("s").astype("int64")
    rows = list(zip(res["tenant"], starts.tolist(), res["sum"].tolist(), res["count"].tolist(), res["min"].tolist(), res["max"].tolist()))
    return elapsed, rows


def _polars_rows(res: Any) -> list[tuple[Any, ...]]:
    import polars as pl

    res = res.with_columns(pl.col("timestamp").dt.convert_time_zone("UTC").dt.epoch("s").alias("start"))
    return list(zip(*(res[c].to_list() for c in ["tenant", "start", "sum", "count", "min", "max"])))


def run_polars_dynamic(path: Path, window: str, zone: str, threads: int) -> tuple[float, list[tuple[Any, ...]]]:
    import polars as pl

    df = pl.read_parquet(path, columns=["tenant", "quantity", "timestamp"])
    t0 = time.perf_counter()
    if zone != "UTC":
        df = df.with_columns(pl.col("timestamp").dt.convert_time_zone(zone))
    every = "1h" if window == "hour" else "1d"
    res = df.group_by_dynamic("timestamp", every=every, group_by="tenant").agg(
        pl.col("quantity").sum().alias("sum"),
        pl.len().alias("count"),
        pl.col("quantity").min().alias("min"),
        pl.col("quantity").max().alias("max"),
    )
    elapsed = time.perf_counter() - t0
    return elapsed, _polars_rows(res)


def run_polars_truncate(path: Path, window: str, zone: str, threads: int) -> tuple[float, list[tuple[Any, ...]]]:
    import polars as pl

    df = pl.read_parquet(path, columns=["tenant", "quantity", "timestamp"])
    t0 = time.perf_counter()
    ts = pl.col("timestamp")
    if zone != "UTC":
        ts = ts.dt.convert_time_zone(zone)
    every = "1h" if window == "hour" else "1d"
    res = (
        df.with_columns(ts.dt.truncate(every).alias("timestamp"))
        .group_by("tenant", "timestamp")
        .agg(
            pl.col("quantity").sum().alias("sum"),
            pl.len().alias("count"),
            pl.col("quantity").min().alias("min"),
            pl.col("quantity").max().alias("max"),
        )
    )
    elapsed = time.perf_counter() - t0
    return elapsed, _polars_rows(res)


def run_duckdb(path: Path, window: str, zone: str, threads: int) -> tuple[float, list[tuple[Any, ...]]]:
    import duckdb
    import pyarrow.parquet as pq

    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute("SET TimeZone='UTC'")
    table = pq.read_table(path, columns=["tenant", "quantity", "timestamp"])
    con.register("usage", table)
    con.execute("CREATE TABLE u AS SELECT * FROM usage")  # native storage, not timed
    interval = "1 hour" if window == "hour" else "1 day"
    bucket = (
        f"time_bucket(INTERVAL '{interval}', timestamp)"
        if zone == "UTC"
        else f"time_bucket(INTERVAL '{interval}', timestamp, '{zone}')"
    )
    sql = (
        f"SELECT tenant, epoch({bucket})::BIGINT AS start, sum(quantity)::BIGINT, count(*), min(quantity), max(quantity) "
        f"FROM u GROUP BY ALL"
    )
    t0 = time.perf_counter()
    res = con.execute(sql).fetchall()
    elapsed = time.perf_counter() - t0
    return elapsed, [tuple(r) for r in res]


RUNNERS = {
    "meterkit": run_meterkit,
    "meterkit (dictionary tenant)": run_meterkit_dict,
    "meterkit (no ids)": run_meterkit_no_ids,
    "pandas": run_pandas,
    "polars group_by_dynamic": run_polars_dynamic,
    "polars dt.truncate+group_by": run_polars_truncate,
    "duckdb time_bucket": run_duckdb,
}


def child(args: argparse.Namespace) -> None:
    days, window, zone = DATASETS[args.dataset]
    elapsed, rows = RUNNERS[args.engine](Path(args.parquet), window, zone, args.threads)
    n, digest = checksum(rows)
    print(json.dumps({"elapsed": elapsed, "buckets": n, "checksum": digest}))


def list_ingest_cost(n: int) -> dict[str, float]:
    """Per-record cost of the plain-list path: UsageRecord construction and Engine.ingest."""
    from datetime import datetime, timedelta, timezone
    from decimal import Decimal

    import meterkit as mk

    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    stamps = [base + timedelta(seconds=37 * i) for i in range(n)]
    quantities = [Decimal(i % 5000) for i in range(n)]
    t0 = time.perf_counter()
    recs = [mk.UsageRecord(f"t{i % 1000:04d}", f"r{i}", "m", "wh", quantities[i], stamps[i]) for i in range(n)]
    t1 = time.perf_counter()
    engine = mk.Engine()
    engine.add_spec(mk.RollupSpec("wh", "hour", "UTC"))
    perf("enable")
    t1 = time.perf_counter()
    report = engine.ingest(recs)
    t2 = time.perf_counter()
    perf("disable")
    assert report.accepted == n
    return {"construct_us": (t1 - t0) / n * 1e6, "ingest_us": (t2 - t1) / n * 1e6}


def arrow_ingest_cost(path: Path, n: int, stores: tuple[str, ...] = ("memory", "sqlite")) -> dict[str, float]:
    """Records per second of Engine.ingest_arrow (stored, idempotent: ids), memory and SQLite,
    for the first n rows of a dataset (a pyarrow Table; subject and metric constant)."""
    import tempfile

    import pyarrow.parquet as pq

    import meterkit as mk

    table = pq.read_table(path).slice(0, n)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for store in stores:
            engine = mk.Engine() if store == "memory" else mk.Engine.open(str(Path(tmp) / "bench.db"))
            engine.add_spec(mk.RollupSpec("wh", "hour", "UTC"))
            perf("enable")
            t0 = time.perf_counter()
            report = engine.ingest_arrow(table, subject="s", metric="wh")
            out[store] = n / (time.perf_counter() - t0)
            perf("disable")
            assert report.accepted == n, report
    return out


def goal_rows(results: list[dict[str, Any]], datasets: list[str], cost: dict[str, float], arrow_cost: dict[str, float], cores: int) -> list[str]:
    """Issue 18's Python rows as measured / goal (≥ 1 meets the goal). meterkit's time is its
    faster form (plain or dictionary tenant) at that thread count."""

    def best(ds: str, prefix: str, threads: int) -> dict[str, Any] | None:
        rs = [r for r in results if r["dataset"] == ds and r["engine"].startswith(prefix) and r["threads"] == threads]
        return min(rs, key=lambda r: r["elapsed"]) if rs else None

    lines = ["| path | measured | goal | measured/goal |", "|---|---|---|---|"]
    for ds in datasets:
        for threads, peer, factor in ((1, "polars", 2.0), (1, "duckdb", 2.0), (cores, "polars", 1.5)):
            mk, other = best(ds, "meterkit", threads), best(ds, peer, threads)
            if mk is None or other is None:
                continue
            speedup = other["elapsed"] / mk["elapsed"]
            lines.append(
                f"| `rollup_arrow` {ds}, {threads} thread(s) ({mk['engine']}) vs {peer}'s fastest form "
                f"({other['engine']}), {threads} thread(s) | {speedup:.2f}× | ≥ {factor}× | **{speedup / factor:.2f}** |"
            )
    for name, rate, goal in (
        ("DataFrame/Arrow → `Engine.ingest_arrow`, memory", arrow_cost["memory"], 1e6),
        ("DataFrame/Arrow → `Engine.ingest_arrow`, SQLite", arrow_cost["sqlite"], 400e3),
        ("plain list of `UsageRecord`s → `Engine.ingest`", 1e6 / cost["ingest_us"], 200e3),
        ("plain list, building the `UsageRecord`s included", 1e6 / (cost["construct_us"] + cost["ingest_us"]), 200e3),
    ):
        lines.append(f"| {name} | {rate / 1e3:.0f} k rec/s | {goal / 1e3:.0f} k rec/s | **{rate / goal:.2f}** |")
    return lines


def profile_target(args: argparse.Namespace) -> None:
    """One timed part alone, for `scripts/bench-python`'s perf profiles: `--profile memory|sqlite|list`."""
    if args.profile == "list":
        print(f"plain list: {list_ingest_cost(args.list_rows)}")
    else:
        rate = arrow_ingest_cost(Path(args.parquet), args.ingest_rows, (args.profile,))
        print(f"ingest_arrow {args.profile}: {rate[args.profile] / 1e3:.0f} k rec/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", default="bench-out/python")
    ap.add_argument("--list-rows", type=int, default=200_000)
    ap.add_argument("--ingest-rows", type=int, default=1_000_000)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--engines", default=",".join(RUNNERS))
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--engine")
    ap.add_argument("--dataset")
    ap.add_argument("--parquet")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--profile", choices=["memory", "sqlite", "list"])
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if args.profile:
        profile_target(args)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    cores = os.cpu_count() or 1
    results: list[dict[str, Any]] = []
    for ds in args.datasets.split(","):
        days, window, zone = DATASETS[ds]
        path = out / f"{ds}-{args.rows}.parquet"
        if not path.exists():
            print(f"generating {path} ({args.rows:,} rows over {days} days)", flush=True)
            generate(args.rows, days, path)
        for engine in args.engines.split(","):
            # pandas is single-threaded by design.
            thread_counts = [1] if engine == "pandas" else [1, cores]
            for threads in thread_counts:
                env = dict(os.environ)
                # numpy's OpenBLAS threads spin after use and steal a core from whatever runs next.
                env.setdefault("OPENBLAS_NUM_THREADS", "1")
                if engine.startswith("polars"):
                    env["POLARS_MAX_THREADS"] = str(threads)
                cmd = [sys.executable, __file__, "--child", "--engine", engine, "--dataset", ds, "--parquet", str(path), "--threads", str(threads)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    raise SystemExit(f"{engine} failed on {ds}")
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                r.update(dataset=ds, engine=engine, threads=threads, rows=args.rows)
                results.append(r)
                print(f"{ds:11} {engine:28} threads={threads}  {r['elapsed']:8.3f} s  {args.rows / r['elapsed'] / 1e6:8.2f} M rows/s  buckets={r['buckets']} {r['checksum']}", flush=True)
    # Every engine must agree with meterkit.
    ok = True
    for ds in args.datasets.split(","):
        ref = next(r for r in results if r["dataset"] == ds and r["engine"] == "meterkit" and r["threads"] == 1)
        for r in results:
            if r["dataset"] == ds and (r["buckets"], r["checksum"]) != (ref["buckets"], ref["checksum"]):
                print(f"MISMATCH: {ds} {r['engine']} threads={r['threads']}", file=sys.stderr)
                ok = False
    cost = list_ingest_cost(args.list_rows)
    first = args.datasets.split(",")[0]
    arrow_cost = arrow_ingest_cost(out / f"{first}-{args.rows}.parquet", min(args.ingest_rows, args.rows))
    load = os.getloadavg()
    lines = ["| dataset | engine | threads | seconds | M rows/s | meterkit speed-up (its s ÷ meterkit s) |", "|---|---|---|---|---|---|"]
    for r in results:
        ref = next(x for x in results if x["dataset"] == r["dataset"] and x["engine"] == "meterkit" and x["threads"] == 1)
        lines.append(
            f"| {r['dataset']} | {r['engine']} | {r['threads']} | {r['elapsed']:.3f} | {r['rows'] / r['elapsed'] / 1e6:.2f} | {r['elapsed'] / ref['elapsed']:.2f}× |"
        )
    lines.append("")
    lines.append(
        f"Rows: {args.rows:,} per dataset, {TENANTS} tenants, {cores} cores, load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. All results equal: {ok}."
    )
    lines.append(
        f"Plain-list path ({args.list_rows:,} records): UsageRecord construction {cost['construct_us']:.2f} µs/record, "
        f"Engine.ingest {cost['ingest_us']:.2f} µs/record "
        f"({1e6 / (cost['construct_us'] + cost['ingest_us']) / 1e3:.0f} k rec/s both, {1e6 / cost['ingest_us'] / 1e3:.0f} k rec/s ingest alone)."
    )
    lines.append(
        f"Arrow table → Engine.ingest_arrow ({min(args.ingest_rows, args.rows):,} rows of {first}, ids, one hourly spec): "
        f"memory {arrow_cost['memory'] / 1e3:.0f} k rec/s, SQLite {arrow_cost['sqlite'] / 1e3:.0f} k rec/s."
    )
    lines.append("")
    lines.extend(goal_rows(results, args.datasets.split(","), cost, arrow_cost, cores))
    text = "\n".join(lines)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"results": results, "list_ingest": cost, "arrow_ingest": arrow_cost, "load": load}, indent=2))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
