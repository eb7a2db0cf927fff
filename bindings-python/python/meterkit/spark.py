"""meterkit rollups on Apache Spark (PySpark >= 4.0): each partition is rolled up where it lives
into partial states, and the partial states are merged per key into exactly the buckets one engine
would answer.

    import meterkit, meterkit.spark
    spec = meterkit.RollupSpec("kwh", "day", "Europe/London", group_by=["subject"])
    partials = meterkit.spark.rollup(df, spec, id_column="id")   # a Spark DataFrame, one row per bucket
    table = partials.toArrow()                                   # pyarrow.Table of the partial-state schema
    buckets = meterkit.finalize_partials(table, spec, tenant="acme")

Duplicates: a record re-sent into two partitions counts once because the rows are first
repartitioned by a hash of their idempotency key ``(tenant, id)``, so every copy of a key meets in
one partition, where ``partial_rollup`` counts it once. Pass ``repartition=False`` only when the
input is already partitioned by that key (e.g. bucketed by it); otherwise a re-sent record would
count twice.

The meterkit package must be importable on the executors (the same wheel installed there).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator, Optional

from ._meterkit import RollupSpec
from ._partial import key_columns, merge_partials, partial_rollup, partial_schema

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from pyspark.sql import DataFrame  # type: ignore[import-untyped,import-not-found,unused-ignore]


def spark_schema(spec: RollupSpec) -> str:
    """The partial-state schema of ``spec`` as a Spark DDL string."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    def ddl(t: "pa.DataType") -> str:
        if pa.types.is_int32(t):
            return "INT"
        if pa.types.is_int64(t):
            return "BIGINT"
        if pa.types.is_list(t):
            return "ARRAY<STRING>"
        return "STRING"

    return ", ".join(f"`{f.name}` {ddl(f.type)}" for f in partial_schema(spec))


def rollup(
    df: "DataFrame",
    spec: RollupSpec,
    *,
    repartition: bool = True,
    partitions: Optional[int] = None,
    **columns: Any,
) -> "DataFrame":
    """Roll up ``df`` under ``spec`` on Spark: hash-repartition by ``(tenant, id)`` (see the
    module's "Duplicates"), ``mapInArrow`` each partition into partial states
    (:func:`meterkit.partial_rollup` with ``columns``, the column arguments of ``rollup_arrow``),
    then ``groupBy(keys).applyInArrow`` to merge the states of each key. Returns a Spark
    DataFrame of the partial-state schema with one row per bucket; finalize it with
    :func:`meterkit.finalize_partials` or load it with :func:`meterkit.import_partials`.
    """
    spec_json = spec.to_json()
    schema = spark_schema(spec)
    if repartition:
        keys = [columns.get("id_column", "id")]
        if columns.get("tenant") is None:
            keys.insert(0, columns.get("tenant_column", "tenant"))
        n = partitions or df.rdd.getNumPartitions()
        df = df.repartition(n, *keys)

    def per_partition(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

        s = RollupSpec.from_dict(json.loads(spec_json))
        parts = list(batches)
        if not parts or not sum(b.num_rows for b in parts):
            return
        out = partial_rollup(pa.Table.from_batches(parts), s, **columns)
        yield from out.to_batches()

    def merge(table: "pa.Table") -> "pa.Table":
        s = RollupSpec.from_dict(json.loads(spec_json))
        return merge_partials([table], s)

    partials = df.mapInArrow(per_partition, schema)
    return partials.groupBy(*key_columns(spec)).applyInArrow(merge, schema)
