"""Partial rollup states: roll up a partition where it lives, merge the partial states in any order
and grouping, and finalize them into exactly the buckets one engine would answer.

The partial-state schema (version ``PARTIAL_SCHEMA_VERSION``) is documented in ``docs/scale-out.md``
and in the core (``meterkit::rollup::partial``). Tables are ``pyarrow.Table``s; the input rows of
``partial_rollup`` go through the binding's Arrow path (arrow-rs) into the core's columnar kernel;
the partial states (one row per bucket) cross as Python lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

from . import _meterkit
from ._meterkit import Bill, BillRequest, BucketTable, Engine, InvalidQuery, RollupSpec, Tariff

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

PARTIAL_SCHEMA_VERSION = 2
"""The version of the partial-state schema this package writes and reads."""

_STR_COLUMNS = ("sum", "min", "min_id", "max", "max_id", "latest", "latest_id", "flagged_sum", "estimated_sum")


def partial_schema(spec: RollupSpec) -> "pa.Schema":
    """The Arrow schema of ``spec``'s partial states (column order as the core writes them)."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    ints = {"window_start", "window_end", "count", "latest_ts", "first_ts", "flagged_count", "estimated_count"}
    fields = []
    for name in _meterkit._partial_columns(spec):
        if name in ("schema_version", "spec"):
            t = pa.int32()
        elif name in ints:
            t = pa.int64()
        elif name.startswith("unique_"):
            t = pa.list_(pa.string())
        else:
            t = pa.string()
        fields.append(pa.field(name, t, nullable=name.startswith("group_")))
    return pa.schema(fields, metadata={"meterkit.partial_schema_version": str(PARTIAL_SCHEMA_VERSION)})


def key_columns(spec: RollupSpec) -> list[str]:
    """The key columns of ``spec``'s partial states: merge groups rows by these."""
    return ["tenant", "spec", "window_start", "window_end"] + [f"group_{d}" for d in spec.group_by]


def _table(data: object) -> "pa.Table":
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    return pa.table(data)  # pandas, polars and anything with __arrow_c_stream__


def _as_text(col: Any) -> Any:
    """A string-like column as Arrow strings (dictionary values decoded, numbers printed), vectorized."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return col
    return col.cast(pa.string())


def _prepared(table: "pa.Table", text_columns: Sequence[str], timestamp_column: str) -> "pa.Table":
    """`table` with the columns the core reads as strings decoded to strings and an RFC 3339
    text timestamp column parsed — pyarrow compute, no per-row Python."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    for name in set(text_columns):
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, _as_text(table[name]))
    if timestamp_column in table.column_names:
        t = table[timestamp_column].type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            i = table.column_names.index(timestamp_column)
            table = table.set_column(i, timestamp_column, table[timestamp_column].cast(pa.timestamp("ns", tz="UTC")))
    return table


def partial_rollup(
    data: object,
    spec: RollupSpec,
    *,
    tenant: Optional[str] = None,
    subject: Optional[str] = None,
    id_column: Optional[str] = "id",
    tenant_column: str = "tenant",
    subject_column: str = "subject",
    metric_column: Optional[str] = None,
    quantity_column: str = "quantity",
    timestamp_column: str = "timestamp",
    dimensions: Optional[Sequence[str]] = None,
    quality_column: Optional[str] = None,
    threads: int = 1,
) -> "pa.Table":
    """Partial states of one partition's rows under ``spec``, as a ``pyarrow.Table`` of
    :func:`partial_schema` (one row per tenant, window and group).

    ``data`` is anything ``rollup_arrow`` reads (a pyarrow Table or RecordBatch, polars or pandas
    DataFrame): its columns go through the Arrow path into the core's columnar kernel
    (``meterkit::rollup::partial::ColumnarPartial``), with no Python object per row. The column
    arguments are those of :func:`rollup_arrow` (``threads`` is accepted for symmetry and ignored:
    one partition is one task), plus ``quality_column`` (``actual``/``flagged``/``estimated``, null
    = actual). An idempotency key ``(tenant, id)`` repeated in the partition counts once
    (identical content) or raises ``ConflictError`` (other content): put every copy of a key in
    the same partition (the Spark and Dask helpers hash-partition by it). Rows whose
    ``metric_column`` is not ``spec.metric`` are skipped.

    Raises ``InvalidQuery`` without ``id_column`` (ids are what makes duplicates count once),
    ``InvalidRecord`` for a missing column or a bad row (field, line and record id named),
    ``ParseError`` for a column of an unsupported type.
    """
    del threads
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    if id_column is None:
        raise InvalidQuery("partial_rollup needs id_column: ids make a re-sent record count once.")
    dims = list(dimensions or [])
    text = [id_column, tenant_column, subject_column, *dims, *spec.group_by, *spec.unique]
    text += [c for c in (metric_column, quality_column) if c is not None]
    table = _prepared(_table(data), text, timestamp_column)
    out = _meterkit._partial_rollup(
        table,
        spec,
        tenant=tenant,
        subject=subject,
        id_column=id_column,
        tenant_column=tenant_column,
        subject_column=subject_column,
        metric_column=metric_column,
        quantity_column=quantity_column,
        timestamp_column=timestamp_column,
        dimensions=dims or None,
        quality_column=quality_column,
    )
    return pa.table(out, schema=partial_schema(spec))


def _concat(tables: Iterable[object], spec: RollupSpec) -> dict[str, list[Any]]:
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    schema = partial_schema(spec)
    parts = [_table(t) for t in tables]
    parts = [t.select(schema.names).cast(schema) for t in parts if t.num_rows]
    if not parts:
        return {name: [] for name in schema.names}
    return pa.concat_tables(parts).to_pydict()  # type: ignore[no-any-return]


def merge_partials(tables: Iterable[object], spec: RollupSpec) -> "pa.Table":
    """Merge partial-state tables of ``spec`` (from any partitions, in any order and grouping)
    into one row per key, ordered by key. Associative and commutative.

    Raises ``ParseError`` naming the column for a table that is not of this schema version.
    """
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    out = _meterkit._merge_partials(spec, _concat(tables, spec))
    return pa.table(out, schema=partial_schema(spec))


def finalize_partials(table: object, spec: RollupSpec, *, tenant: Optional[str] = None) -> BucketTable:
    """The buckets of ``tenant`` (default: the only tenant in the table) from partial states,
    merged first: the rows ``Engine.query`` gives for the same records grouped as ``spec``, as a
    ``BucketTable`` (the type ``rollup_arrow`` returns, without its ``tenant`` column).

    Raises ``InvalidQuery`` when the table holds several tenants and ``tenant`` is not given.
    """
    return _meterkit._finalize_partials(spec, _concat([table], spec), tenant)


def import_partials(engine: Engine, table: object, spec: RollupSpec) -> int:
    """Import partial states into ``engine``'s store under ``spec`` (added when missing) in one
    atomic change, so that its queries read them as if the records had been ingested; returns
    the engine's spec id. Idempotent: the rows of one key are merged, then each key's state is
    **set** (importing the same table twice changes nothing; a recomputed table replaces its
    keys). See ``Engine::import_buckets`` in the core for what imported states do not support
    (retraction, backfill of later specs, ``Engine.bill``: use :func:`bill_partials`).
    """
    return _meterkit._import_partials(engine, spec, _concat([table], spec))


def bill_partials(tariff: Tariff, request: BillRequest, table: object, spec: RollupSpec) -> Bill:
    """``request``'s bill rated from partial states of ``spec`` (grouped by ``subject``): each
    bucket counts as one usage of its sum at its window start. Exact when the windows are fine
    enough for the tariff's charges — daily for per-unit, tiers, packages and fixed charges;
    hourly (or 15-minute) for time-of-use, allowances and demand (see ``docs/scale-out.md``).
    """
    return _meterkit._bill_partials(tariff, request, spec, _concat([table], spec))

