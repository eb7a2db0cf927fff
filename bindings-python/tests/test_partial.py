"""Partial rollup states (issue 21): partitions rolled up apart and merged give one engine's answer,
duplicates across partitions count once when partitioned by key, bills from partial states."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

import meterkit as mk

SPEC = mk.RollupSpec("kwh", "hour", "America/New_York", group_by=["subject", "region"], unique=["carrier"])
N = 600


def table() -> pa.Table:
    base = datetime(2024, 3, 9, 20, tzinfo=timezone.utc)  # across the New York DST change
    return pa.table(
        {
            "id": [f"r{i}" for i in range(N)],
            "tenant": ["acme" if i % 3 else "beta" for i in range(N)],
            "subject": [f"m{i % 4}" for i in range(N)],
            "quantity": pa.array([Decimal(i % 11) / 4 - 1 for i in range(N)], pa.decimal128(10, 3)),
            "timestamp": pa.array([base + timedelta(minutes=7 * i) for i in range(N)], pa.timestamp("us", tz="UTC")),
            "region": [["north", "south", None][i % 3] for i in range(N)],
            "carrier": [["ee", "o2", "vf", None][(i // 5) % 4] for i in range(N)],
        }
    )


def with_duplicates(t: pa.Table, parts: int) -> list[pa.Table]:
    """Uneven partitions of `t` plus a copy of every 20th row (5 %) in another partition."""
    sizes = [1, 2, 3, 5, 8, 13][:parts]
    bounds = [round(N * sum(sizes[:k]) / sum(sizes)) for k in range(parts + 1)]
    out = [t.slice(bounds[k], bounds[k + 1] - bounds[k]) for k in range(parts)]
    for k in range(parts):
        dup_rows = [i for i in range(bounds[k], bounds[k + 1]) if i % 20 == 0]
        out[(k + 1) % parts] = pa.concat_tables([out[(k + 1) % parts], t.take(dup_rows)])
    return out


def by_key(tables: list[pa.Table], parts: int) -> list[pa.Table]:
    """Hash-partition by (tenant, id): the rule the Spark and Dask helpers follow."""
    t = pa.concat_tables(tables)
    keys = [zlib.crc32(f"{a}\0{b}".encode()) % parts for a, b in zip(t["tenant"].to_pylist(), t["id"].to_pylist())]
    return [t.filter(pa.array([k == p for k in keys])) for p in range(parts)]


def engine_json(engine: mk.Engine, tenant: str) -> str:
    q = mk.Query(tenant, "kwh", "hour", "America/New_York", group_by=SPEC.group_by, unique=SPEC.unique)
    return "[" + ",".join(b.to_json() for b in engine.query(q)) + "]"


def reference(tables: list[pa.Table]) -> mk.Engine:
    engine = mk.Engine()
    engine.add_spec(SPEC)
    for t in tables:
        engine.ingest_arrow(t, metric="kwh", dimensions=["region", "carrier"])
    return engine


def test_partitions_merged_equal_one_engine_and_duplicates_count_once() -> None:
    inputs = with_duplicates(table(), 5)
    ref = reference(inputs)
    partials = [mk.partial_rollup(p, SPEC) for p in by_key(inputs, 4)]
    assert all(p.schema == mk.partial_schema(SPEC) for p in partials)
    assert set(mk.key_columns(SPEC)) <= set(partials[0].column_names)
    assert partials[0]["schema_version"].to_pylist()[0] == mk.PARTIAL_SCHEMA_VERSION
    # Any grouping and order of merges gives the same table.
    one = mk.merge_partials(partials, SPEC)
    tree = mk.merge_partials([mk.merge_partials(partials[2:], SPEC), mk.merge_partials(partials[:2][::-1], SPEC)], SPEC)
    assert one.equals(tree)
    for tenant in ("acme", "beta"):
        target = mk.Engine()
        assert mk.import_partials(target, one, SPEC) == 0
        assert engine_json(target, tenant) == engine_json(ref, tenant)
        q = mk.Query(tenant, "kwh", "hour", "America/New_York", group_by=SPEC.group_by, unique=SPEC.unique)
        final = mk.finalize_partials(one, SPEC, tenant=tenant)
        assert isinstance(final, mk.BucketTable)
        assert final.to_pylist() == ref.query_arrow(q).to_pylist()
    # Without partitioning by key, the copies in other partitions count twice.
    naive = mk.merge_partials([mk.partial_rollup(p, SPEC) for p in inputs], SPEC)
    assert sum(naive["count"].to_pylist()) == N + N // 20
    assert sum(one["count"].to_pylist()) == N


def test_a_single_tenant_needs_no_tenant_argument_and_several_do() -> None:
    part = mk.partial_rollup(table(), SPEC)
    with pytest.raises(mk.InvalidQuery):
        mk.finalize_partials(part, SPEC)
    only = mk.partial_rollup(table(), SPEC, tenant="solo")
    assert sum(r["count"] for r in mk.finalize_partials(only, SPEC).to_pylist()) == N
    acme = mk.finalize_partials(part, SPEC, tenant="acme").to_pylist()
    assert sum(r["count"] for r in acme) == len([i for i in range(N) if i % 3])


def test_bad_input_is_refused_with_the_column_named() -> None:
    with pytest.raises(mk.InvalidQuery):
        mk.partial_rollup(table(), SPEC, id_column=None)
    with pytest.raises(mk.InvalidRecord, match="no column 'amount'"):
        mk.partial_rollup(table(), SPEC, quantity_column="amount")
    part = mk.partial_rollup(table(), SPEC)
    future = part.set_column(0, "schema_version", pa.array([99] * part.num_rows, pa.int32()))
    with pytest.raises(mk.ParseError) as e:
        mk.merge_partials([future], SPEC)
    assert e.value.field == "schema_version"
    broken = part.set_column(part.column_names.index("sum"), "sum", pa.array(["x"] * part.num_rows))
    with pytest.raises(mk.ParseError) as e:
        mk.merge_partials([broken], SPEC)
    assert e.value.field == "sum"
    conflict = pa.concat_tables([table().slice(0, 2), table().slice(0, 1).set_column(3, "quantity", pa.array([Decimal(9)], pa.decimal128(10, 3)))])
    with pytest.raises(mk.ConflictError):
        mk.partial_rollup(conflict, SPEC)


PEAK_HOURS = [0] * 16 + [1] * 5 + [0] * 3
TARIFF = {
    "currency": "USD",
    "time_zone": "America/New_York",
    "charges": [
        {
            "id": "energy",
            "type": "time_of_use",
            "unit": "kWh",
            "schedule": {"periods": ["off", "peak"], "weekday": [PEAK_HOURS]},
            "periods": {"off": {"rate": "0.10"}, "peak": {"rate": "0.30"}},
        },
        {"id": "demand", "type": "demand", "rate": "12.50"},
        {"id": "standing", "type": "fixed", "per": "day", "amount": "0.50"},
    ],
}


def test_bills_from_hourly_partials_equal_bills_from_records() -> None:
    spec = mk.RollupSpec("kwh", "hour", "America/New_York", group_by=["subject"])
    t = table().filter(pa.compute.equal(table()["tenant"], "acme"))
    engine = mk.Engine()
    engine.ingest_arrow(t, metric="kwh")
    merged = mk.merge_partials([mk.partial_rollup(p, spec) for p in by_key([t], 3)], spec)
    tariff = mk.Tariff.from_dict(TARIFF)
    for subject in ("m0", "m1", "m2", "m3"):
        req = mk.BillRequest.for_month("acme", subject, "kwh", "2024-03", "America/New_York")
        bill = mk.bill_partials(tariff, req, merged, spec)
        assert bill.total > 0
        assert bill.to_json() == engine.bill(tariff, req).to_json()
