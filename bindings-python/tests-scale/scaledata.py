"""Generated usage for the Spark/Dask tests and benchmark (issue 21): `n` rows of two tenants'
meters over March 2024 (across the US DST change) in uneven Parquet files, 5 % of them copies of
rows of *another* file (records re-sent into two partitions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import meterkit as mk

SPEC = mk.RollupSpec("kwh", "day", "America/New_York", group_by=["region"], unique=["subject"])
TENANTS = ("acme", "globex")
SIZES = (1, 2, 3, 5, 8, 13, 21)  # uneven partitions (files)


def generate(n: int, out: Path, seed: int = 21, dup_share: float = 0.05) -> list[Path]:
    """Write `n` rows (of which round(n * dup_share) are copies from another file) to len(SIZES)
    Parquet files under `out`; returns the paths. Vectorized (numpy and pyarrow compute, no
    Python object per row): 2M rows take a few seconds."""
    rng = np.random.default_rng(seed)
    dups = round(n * dup_share)
    uniq = n - dups
    start = np.datetime64("2024-03-01T05:00:00", "us")
    t = start + rng.integers(0, 31 * 86_400_000_000, uniq).astype("timedelta64[us]")
    table = pa.table(
        {
            "id": _numbered("r", np.arange(uniq), 8),
            "tenant": _pick(list(TENANTS), (rng.random(uniq) < 0.3).astype(np.int32)),
            "subject": _pick(_numbered("m", np.arange(1000), 4).to_pylist(), rng.integers(0, 1000, uniq)),
            "quantity": _kwh(rng, uniq),
            "timestamp": pa.array(t, pa.timestamp("us", tz="UTC")),
            "region": _pick(["north", "south", "east", "west", None], rng.integers(0, 5, uniq)),
        }
    )
    weights = np.array(SIZES, dtype=float) / sum(SIZES)
    bounds = np.round(np.cumsum(np.concatenate([[0], weights])) * uniq).astype(int)
    parts = [table.slice(bounds[k], bounds[k + 1] - bounds[k]) for k in range(len(SIZES))]
    # Copies: rows drawn across all files, each appended to a different file than its own.
    picks = np.sort(rng.choice(uniq, dups, replace=False))
    home = np.searchsorted(bounds, picks, side="right") - 1
    target = (home + 1 + rng.integers(0, len(SIZES) - 1, dups)) % len(SIZES)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, part in enumerate(parts):
        extra = table.take(pa.array(picks[target == k]))
        whole = pa.concat_tables([part, extra])
        p = out / f"part-{k}.parquet"
        pq.write_table(whole, p)
        paths.append(p)
    return paths


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """`prefix` + each number zero-padded to `width` digits, by pyarrow compute."""
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _pick(values: list, codes: np.ndarray) -> pa.Array:
    """`values[codes[i]]` per row as a string array (a `None` value gives a null), vectorized."""
    dictionary = pa.array([v if v is not None else "" for v in values], pa.string())
    nulls = np.array([v is None for v in values])[codes]
    indices = pa.array(codes.astype(np.int32), mask=nulls if nulls.any() else None)
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())


def _kwh(rng: np.random.Generator, n: int) -> pa.Array:
    """Wh as exact kWh: the integers reinterpreted at scale 3 (decimal128(18, 3))."""
    wh = pa.array(rng.integers(-50, 5_000_000, n)).cast(pa.decimal128(19, 0))
    return wh.view(pa.decimal128(19, 3))


def query_json(engine: mk.Engine, tenant: str) -> str:
    """One engine's answer for `tenant` under SPEC, as the JSON array of its buckets."""
    q = mk.Query(tenant, SPEC.metric, SPEC.window, SPEC.time_zone, group_by=SPEC.group_by, unique=SPEC.unique)
    return "[" + ",".join(b.to_json() for b in engine.query(q)) + "]"


def reference(paths: list[Path]) -> mk.Engine:
    """One engine that ingested every file (a re-sent record is a duplicate there)."""
    engine = mk.Engine()
    engine.add_spec(SPEC)
    for p in paths:
        engine.ingest_arrow(pq.read_table(p), metric=SPEC.metric, dimensions=["region"])
    return engine


def imported(partials: pa.Table) -> mk.Engine:
    """A fresh engine holding merged partial states."""
    engine = mk.Engine()
    mk.import_partials(engine, partials, SPEC)
    return engine
