"""The columnar path: pandas, polars and pyarrow in through __arrow_c_stream__, BucketTable out."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import meterkit as mk

from conftest import utc

N = 96


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(N)],
            "tenant": ["acme"] * (N // 2) + ["beta"] * (N // 2),
            "subject": [f"m{i % 3}" for i in range(N)],
            "metric": ["kwh"] * N,
            "quantity": [round(0.1 * (i % 7), 1) for i in range(N)],
            "timestamp": pd.date_range("2024-03-09", periods=N, freq="h", tz="UTC"),
            "carrier": [["ee", "o2", None][i % 3] for i in range(N)],
        }
    )


def as_records(df: pd.DataFrame) -> list[mk.UsageRecord]:
    out = []
    for row in df.itertuples():
        dims = {"carrier": row.carrier} if not pd.isna(row.carrier) else None
        out.append(
            mk.UsageRecord(row.tenant, row.id, row.subject, row.metric, row.quantity, row.timestamp.to_pydatetime(), dimensions=dims)
        )
    return out


def dictionary_encoded(t: pa.Table) -> pa.Table:
    """The tenant, carrier and metric columns dictionary-encoded (int32 codes)."""
    for name in ("tenant", "carrier", "metric"):
        if name in t.column_names:
            t = t.set_column(t.column_names.index(name), name, t.column(name).dictionary_encode())
    return t


KINDS = {
    "pandas": lambda df: df,
    "polars": lambda df: pl.from_pandas(df),
    "pyarrow": lambda df: pa.Table.from_pandas(df, preserve_index=False),
    "pyarrow-chunked": lambda df: pa.Table.from_batches(pa.Table.from_pandas(df, preserve_index=False).to_batches(max_chunksize=10)),
    # Categorical / dictionary-encoded string columns go to the core as codes.
    "polars-categorical": lambda df: pl.from_pandas(df).with_columns(
        pl.col("tenant").cast(pl.Categorical), pl.col("subject").cast(pl.Categorical), pl.col("carrier").cast(pl.Categorical)
    ),
    "pyarrow-dictionary": lambda df: dictionary_encoded(pa.Table.from_pandas(df, preserve_index=False)),
    "polars-large-string": lambda df: pa.Table.from_pandas(df, preserve_index=False).cast(
        pa.schema([(f.name, pa.large_string() if f.type == pa.string() else f.type) for f in pa.Table.from_pandas(df, preserve_index=False).schema])
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_dataframe_ingest_equals_record_ingest(kind: str) -> None:
    df = frame()
    by_rows = mk.Engine()
    by_rows.ingest(as_records(df))
    columnar = mk.Engine()
    report = columnar.ingest_arrow(KINDS[kind](df), dimensions=["carrier"])
    assert (report.accepted, report.duplicates, report.rejected) == (N, 0, [])
    for tenant in ["acme", "beta"]:
        q = mk.Query(tenant, "kwh", "day", "America/New_York", group_by=["carrier", "subject"])
        assert columnar.query(q) == by_rows.query(q)
        assert len(columnar.query(q)) > 0
    # Re-ingesting the same frame is all duplicates.
    assert columnar.ingest_arrow(KINDS[kind](df), dimensions=["carrier"]).duplicates == N


def test_float_quantities_are_exact_decimals() -> None:
    engine = mk.Engine()
    df = pd.DataFrame(
        {"id": ["a", "b", "c"], "quantity": [0.1, 0.2, 0.3], "timestamp": pd.to_datetime(["2024-01-01"] * 3, utc=True)}
    )
    engine.ingest_arrow(df, tenant="t", metric="kwh", subject="m")
    [b] = engine.query(mk.Query("t", "kwh", "day", "UTC"))
    assert b.sum == Decimal("0.6")  # not 0.6000000000000001


def test_decimal_int_and_string_quantity_columns() -> None:
    ts = pa.array([utc(2024, 1, 1, h) for h in range(3)], pa.timestamp("ms", tz="Europe/London"))
    for qty in (
        pa.array([Decimal("1.25"), Decimal("2.50"), Decimal("-0.75")], pa.decimal128(10, 2)),
        pa.array(["1.25", "2.5", "-0.75"], pa.string()),
    ):
        t = pa.table({"id": ["a", "b", "c"], "quantity": qty, "timestamp": ts})
        engine = mk.Engine()
        engine.ingest_arrow(t, tenant="t", metric="kwh", subject="m")
        [b] = engine.query(mk.Query("t", "kwh", "day", "UTC"))
        assert (b.sum, b.min, b.max) == (Decimal(3), Decimal("-0.75"), Decimal("2.5"))
    ints = pa.table({"id": ["a", "b"], "quantity": pa.array([2**40, 3], pa.int64()), "timestamp": ts[:2]})
    engine = mk.Engine()
    engine.ingest_arrow(ints, tenant="t", metric="bytes", subject="sim")
    assert engine.query(mk.Query("t", "bytes", "day", "UTC"))[0].sum == Decimal(2**40 + 3)


def test_end_column_and_sliced_tables() -> None:
    t = pa.table(
        {
            "id": [f"r{i}" for i in range(10)],
            "quantity": pa.array(range(10), pa.int32()),
            "timestamp": pa.array([utc(2024, 1, 1, i) for i in range(10)], pa.timestamp("s", tz="UTC")),
            "stop": pa.array([utc(2024, 1, 1, i) + timedelta(minutes=30) for i in range(10)], pa.timestamp("us", tz="UTC")),
        }
    ).slice(3, 4)
    engine = mk.Engine()
    assert engine.ingest_arrow(t, tenant="t", metric="s", subject="x", end_column="stop").accepted == 4
    recs = engine.records("t", "s", utc(2024, 1, 1), utc(2024, 1, 2))
    assert [r.id for r in recs] == ["r3", "r4", "r5", "r6"]
    assert recs[0].end == utc(2024, 1, 1, 3, 30) and recs[0].quantity == Decimal(3)


def test_column_errors_name_the_column_and_row() -> None:
    engine = mk.Engine()
    df = frame()
    with pytest.raises(mk.ParseError, match="naive") as naive:
        engine.ingest_arrow(df.assign(timestamp=df.timestamp.dt.tz_localize(None)))
    assert naive.value.field == "timestamp"
    with pytest.raises(mk.InvalidRecord) as missing:
        engine.ingest_arrow(df.drop(columns=["id"]))
    assert missing.value.field == "id"
    with_null = df.assign(quantity=[None] + list(df.quantity[1:]))
    with pytest.raises(mk.ParseError) as null:
        engine.ingest_arrow(with_null)
    assert (null.value.field, null.value.line) == ("quantity", 1)
    bad_text = pa.table({"id": ["a"], "quantity": ["x1"], "timestamp": pa.array([utc(2024, 1, 1)], pa.timestamp("s", "UTC"))})
    with pytest.raises(mk.ParseError) as parse:
        engine.ingest_arrow(bad_text, tenant="t", metric="m", subject="s")
    assert parse.value.field == "quantity"
    null_tenant = pl.from_pandas(df.assign(tenant=[None, *df.tenant[1:]])).with_columns(pl.col("tenant").cast(pl.Categorical))
    with pytest.raises(mk.ParseError) as null_code:
        engine.ingest_arrow(null_tenant)
    assert (null_code.value.field, null_code.value.line) == ("tenant", 1)
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        engine.ingest_arrow([1, 2, 3])
    # Nothing of any failed frame was stored.
    assert engine.query(mk.Query("acme", "kwh", "day", "UTC")) == []


def test_invalid_rows_are_reported_like_plain_ingest() -> None:
    df = frame().head(3).assign(subject=["m", "", "m"])
    report = mk.Engine().ingest_arrow(df)
    assert report.accepted == 2 and [r.id for r in report.rejected] == ["r1"]


def t_quality_ok(table: mk.BucketTable, rows: list[mk.Bucket]) -> bool:
    t = pa.table(table)
    return (
        t.column("flagged_count").to_pylist() == [b.flagged_count for b in rows]
        and t.column("estimated_sum").to_pylist() == [b.estimated_sum for b in rows]
    )


def test_bucket_table_quality_columns() -> None:
    engine = mk.Engine()
    engine.ingest(
        [
            mk.UsageRecord("t", "a", "s", "kwh", "1.5", utc(2024, 1, 1), quality="estimated"),
            mk.UsageRecord("t", "b", "s", "kwh", 2, utc(2024, 1, 1, 1), quality="flagged"),
            mk.UsageRecord("t", "c", "s", "kwh", 3, utc(2024, 1, 1, 2)),
        ]
    )
    table = engine.query_arrow(mk.Query("t", "kwh", "day", "UTC"))
    [row] = table.to_pylist()
    assert (row["flagged_count"], row["flagged_sum"], row["estimated_count"], row["estimated_sum"]) == (
        1,
        Decimal(2),
        1,
        Decimal("1.5"),
    )
    t = pa.table(table)
    assert t.column("estimated_sum").to_pylist() == [Decimal("1.5")]


def test_bucket_table_reads_in_pyarrow_polars_pandas() -> None:
    engine = mk.Engine()
    engine.ingest_arrow(frame(), dimensions=["carrier"])
    q = mk.Query("acme", "kwh", "day", "UTC", group_by=["carrier"], unique=["subject"])
    rows = engine.query(q)
    table = engine.query_arrow(q)
    assert isinstance(table, mk.BucketTable)
    assert len(table) == table.num_rows == len(rows) > 0
    assert table.column_names == [
        "window_start", "window_end", "subject", "metric", "carrier",
        "sum", "count", "min", "max", "mean", "latest", "unique_subject",
        "flagged_count", "flagged_sum", "estimated_count", "estimated_sum", "first_at", "last_at",
    ]  # fmt: skip
    assert t_quality_ok(table, rows)
    t = pa.table(table)
    assert t.schema.field("sum").type == pa.decimal128(38, 1)
    assert t.schema.field("window_start").type == pa.timestamp("us", tz="UTC")
    assert t.column("sum").to_pylist() == [b.sum for b in rows]
    assert t.column("carrier").to_pylist() == [b.group["carrier"] for b in rows]
    assert t.column("unique_subject").to_pylist() == [b.unique["subject"] for b in rows]
    assert t.column("window_start").to_pylist() == [b.window_start for b in rows]
    p = pl.DataFrame(table)
    # pl.from_arrow gives a DataFrame for pyarrow input and a struct Series for any other stream.
    assert pl.from_arrow(pa.table(table)).equals(p)  # type: ignore[union-attr,arg-type]
    assert pl.from_arrow(table).struct.unnest().equals(p)  # type: ignore[union-attr,arg-type]
    assert p["count"].to_list() == [b.count for b in rows]
    assert table.to_polars()["mean"].to_list() == [b.mean for b in rows]
    d = table.to_pandas()
    assert list(d["sum"]) == [b.sum for b in rows]
    assert table.to_pyarrow().num_rows == len(rows)
    plain = table.to_pylist()
    assert [r["sum"] for r in plain] == [b.sum for b in rows] and plain[0]["window_start"] == rows[0].window_start
    assert "BucketTable(rows=" in repr(table)
    # The stream can be read more than once.
    assert pa.table(table).equals(t)


def test_bucket_table_nulls_and_strings_fallback() -> None:
    engine = mk.Engine()
    big = Decimal("792281625142643375935439503")
    engine.ingest(
        [
            mk.UsageRecord("t", "a", "s", "n", big, utc(2024, 1, 1)),
            mk.UsageRecord("t", "b", "s", "n", Decimal("0.000000000001"), utc(2024, 1, 2, 1)),
        ]
    )
    q = mk.Query("t", "n", "day", "UTC", from_=utc(2024, 1, 1), to=utc(2024, 1, 4), fill="zero")
    t = pa.table(engine.query_arrow(q))
    # 27 integer digits + 12 fraction digits do not fit decimal128(38): exact strings instead.
    assert t.schema.field("sum").type == pa.string()
    assert t.column("sum").to_pylist() == ["792281625142643375935439503", "0.000000000001", "0"]
    assert t.column("min").to_pylist()[2] is None
    assert t.column("count").to_pylist() == [1, 1, 0]


def test_rollup_arrow_matches_the_engine() -> None:
    df = frame()
    spec = mk.RollupSpec("kwh", "hour", "Asia/Kolkata", group_by=["carrier"], unique=["subject"])
    out = mk.rollup_arrow(pl.from_pandas(df), spec)
    engine = mk.Engine()
    engine.ingest_arrow(df, dimensions=["carrier"])
    expected = []
    for tenant in ["acme", "beta"]:
        for b in engine.query(mk.Query(tenant, "kwh", "hour", "Asia/Kolkata", group_by=["carrier"], unique=["subject"])):
            expected.append((tenant, b.window_start, b.group["carrier"], b.sum, b.count, b.mean, b.unique["subject"]))
    got = [
        (r["tenant"], r["window_start"], r["carrier"], r["sum"], r["count"], r["mean"], r["unique_subject"])
        for r in out.to_pylist()
    ]
    assert sorted(got, key=str) == sorted(expected, key=str)
    assert out.column_names[0] == "tenant"
    # Tenants split between threads: the same table, whatever the thread count.
    for threads in (2, 3, 0):
        assert pa.table(mk.rollup_arrow(df, spec, threads=threads)).equals(pa.table(out))
    # Categorical (dictionary-encoded) tenants and carriers: the same table.
    for kind in ("polars-categorical", "pyarrow-dictionary"):
        for threads in (1, 2):
            assert pa.table(mk.rollup_arrow(KINDS[kind](df), spec, threads=threads)).equals(pa.table(out))
    # Integer quantities without ids (the kernel's specialised loop) over plain and dictionary tenants.
    wh = df.assign(quantity=[i % 7 - 2 for i in range(N)]).drop(columns=["id"])
    day = mk.RollupSpec("kwh", "day", "America/New_York")
    plain = pa.table(mk.rollup_arrow(wh, day, id_column=None))
    assert pa.table(mk.rollup_arrow(KINDS["pyarrow-dictionary"](wh), day, id_column=None)).equals(plain)
    assert sum(plain.column("sum").to_pylist()) == sum(wh.quantity)
    # The record path (a metric column: rows of other metrics are skipped) gives the same table
    # as the core's columnar kernel (a constant metric).
    mixed = pd.concat([df, df.assign(metric="other", id=df["id"] + "-x")], ignore_index=True)
    via_records = mk.rollup_arrow(mixed, spec, metric_column="metric")
    assert pa.table(via_records).equals(pa.table(out))
    # Sub-second timestamps take the record path too (the kernel works in whole seconds).
    fractional = df.assign(timestamp=df["timestamp"] + pd.Timedelta(milliseconds=250))
    frac = mk.rollup_arrow(fractional, spec).to_pylist()
    assert [(r["tenant"], r["sum"], r["count"]) for r in frac] == [(r["tenant"], r["sum"], r["count"]) for r in out.to_pylist()]
    no_ids = mk.rollup_arrow(df.drop(columns=["id"]), mk.RollupSpec("kwh", "day", "UTC"), id_column=None)
    assert sum(r["count"] for r in no_ids.to_pylist()) == N
