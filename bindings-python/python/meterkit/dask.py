"""meterkit rollups on Dask: each partition is rolled up into partial states, and the partial
states are merged in a tree (``split_every`` at a time) into exactly the buckets one engine would
answer.

    import meterkit, meterkit.dask
    partials = meterkit.dask.rollup(ddf, spec, id_column="id")  # dask DataFrame, one partition
    table = pyarrow.Table.from_pandas(partials.compute(), schema=meterkit.partial_schema(spec))

Duplicates: the rows are first shuffled by ``(tenant, id)`` (a hash partitioning), so every copy
of an idempotency key meets in one partition, where ``partial_rollup`` counts it once. Pass
``shuffle=False`` only when the input is already partitioned by that key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._meterkit import RollupSpec
from ._partial import merge_partials, partial_rollup, partial_schema

if TYPE_CHECKING:
    import dask.dataframe as dd  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]


def _partial(pdf: "pd.DataFrame", spec_json: str, columns: dict[str, Any]) -> "pa.Table":
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    spec = RollupSpec.from_dict(json.loads(spec_json))
    return partial_rollup(pa.Table.from_pandas(pdf, preserve_index=False), spec, **columns)


def _merge(spec_json: str, *tables: "pa.Table") -> "pa.Table":
    return merge_partials(tables, RollupSpec.from_dict(json.loads(spec_json)))


def _to_pandas(table: "pa.Table") -> "pd.DataFrame":
    # Arrow-backed columns: the `unique_<dim>` lists stay lists (dask would turn an object column
    # into strings), and every column converts back to the schema exactly.
    import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]

    return table.to_pandas(types_mapper=pd.ArrowDtype)


def rollup(
    ddf: "dd.DataFrame",
    spec: RollupSpec,
    *,
    shuffle: bool = True,
    split_every: int = 8,
    **columns: Any,
) -> "dd.DataFrame":
    """Roll up ``ddf`` under ``spec`` on Dask: shuffle by ``(tenant, id)`` (see the module's
    "Duplicates"), :func:`meterkit.partial_rollup` per partition (``columns`` are the column
    arguments of ``rollup_arrow``), then a tree reduction of :func:`meterkit.merge_partials`
    ``split_every`` tables at a time. Returns a one-partition Dask DataFrame of the
    partial-state schema, one row per bucket, with Arrow-backed (``pd.ArrowDtype``) columns:
    ``pyarrow.Table.from_pandas(df.compute(), schema=meterkit.partial_schema(spec))`` gives the
    partial-state table back.
    """
    import dask  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import dask.dataframe as dd  # type: ignore[import-untyped,import-not-found,unused-ignore]

    if split_every < 2:
        raise ValueError("split_every must be at least 2.")
    spec_json = spec.to_json()
    if shuffle:
        keys = [columns.get("id_column", "id")]
        if columns.get("tenant") is None:
            keys.insert(0, columns.get("tenant_column", "tenant"))
        ddf = ddf.shuffle(on=keys, npartitions=ddf.npartitions)
    level = [dask.delayed(_partial)(p, spec_json, columns) for p in ddf.to_delayed()]
    while len(level) > 1:
        level = [dask.delayed(_merge)(spec_json, *level[i : i + split_every]) for i in range(0, len(level), split_every)]
    meta = _to_pandas(partial_schema(spec).empty_table())
    return dd.from_delayed([dask.delayed(_to_pandas)(level[0])], meta=meta, verify_meta=False)
