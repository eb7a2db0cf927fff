"""Every shared case in tests/vectors/ run through the Python API, compared byte for byte with
the canonical JSON of its "expected" part (the rule of tests/vectors/README.md)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest

import meterkit as mk

from conftest import VECTORS


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def run_rollup(case: dict[str, Any]) -> dict[str, Any]:
    engine = mk.Engine()
    inp = case["input"]
    reports = []
    for batch in inp["batches"]:
        records = [mk.UsageRecord.from_dict(r) for r in batch]
        reports.append(engine.ingest(records).to_dict())
    for tenant, rid in inp.get("retract", []):
        engine.retract(tenant, rid)
    buckets = engine.query(mk.Query.from_dict(inp["query"]))
    return {"report": reports, "buckets": [b.to_dict() for b in buckets]}


def run_bill(case: dict[str, Any]) -> dict[str, Any]:
    """As core/tests/bill_vectors.rs: the tariff (meterkit or URDB) as JSON text, the request
    from the input's fields, the bill's JSON, or {"error": {"kind", "field"}} for a refusal."""
    inp = case["input"]
    try:
        tariff = mk.Tariff.from_any(json.dumps(inp["tariff"]))
        request = mk.BillRequest.from_dict({k: v for k, v in inp.items() if k not in ("tariff", "records")})
        records = [mk.UsageRecord.from_dict(r) for r in inp["records"]]
        return tariff.bill(request, records).to_dict()
    except mk.MeterkitError as e:
        return {"error": {"kind": e.kind, "field": e.field}}


def run_validate(case: dict[str, Any]) -> Any:
    """As core/tests/validate_vectors.rs: a fresh Validator with the config for the listed
    metrics (or as the default), the clock at "now", the records checked in order."""
    inp = case["input"]
    config = mk.ValidationConfig.from_dict(inp["config"])
    now = datetime.fromisoformat(inp["now"].replace("Z", "+00:00"))
    metrics = inp.get("metrics")
    validator = mk.Validator({m: config for m in metrics}, now=now) if metrics is not None else mk.Validator(default=config, now=now)
    findings = validator.check_all([mk.UsageRecord.from_dict(r) for r in inp["records"]])
    # Also byte for byte in the core's field order (the README of tests/vectors/validate).
    assert "[" + ",".join(f.to_json() for f in findings) + "]" == json.dumps(
        case["expected"], separators=(",", ":"), ensure_ascii=False
    )
    return [f.to_dict() for f in findings]


def run_reading(case: dict[str, Any]) -> dict[str, Any]:
    """Like tests/support.rs run_reading_case: each reading through Engine.record_reading, projected."""
    engine = mk.Engine()
    inp = case["input"]

    def pick(d: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        return {k: d.get(k) for k in keys}

    outcomes = []
    for item in inp["readings"]:
        o = engine.record_reading(inp["tenant"], inp["metric"], item["reading"], item.get("exchange"), inp["options"])
        p = pick(o, ["meter", "timestamp", "reading", "status", "consumption"])
        p["findings"] = [pick(f, ["rule", "severity", "action"]) for f in o["findings"]]
        p["records"] = [
            {**pick(r, ["id", "timestamp", "end", "quantity"]), "quality": r.get("quality", "actual")} for r in o["records"]
        ]
        outcomes.append(p)
    return {"outcomes": outcomes}


def run_counter(case: dict[str, Any]) -> dict[str, Any]:
    """Like tests/support.rs run_counter_case: each call through Engine.track_counters, projected."""
    engine = mk.Engine()
    inp = case["input"]

    def pick(d: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        return {k: d.get(k) for k in keys}

    calls = []
    for call in inp["calls"]:
        o = engine.track_counters(inp["tenant"], inp["metric"], call["readings"], call["options"])
        calls.append(
            {
                "accepted": o["report"]["accepted"],
                "duplicates": o["report"]["duplicates"],
                "rejected": len(o["report"]["rejected"]),
                "records": [
                    {**pick(r, ["id", "timestamp", "end", "quantity"]), "quality": r.get("quality", "actual")}
                    for r in o["records"]
                ],
                "findings": [pick(f, ["rule", "severity", "action", "subject", "timestamp"]) for f in o["findings"]],
            }
        )
    return {"calls": calls}


def run_partial(case: dict[str, Any]) -> dict[str, Any]:
    """Like tests/support.rs run_partial_case: each partition's records as an Arrow table through
    partial_rollup, all merged; "buckets" are the merged states imported once into a fresh engine
    (and finalize_partials must equal that engine's query_arrow), "imported" the query after
    importing them twice more into another engine (an import sets, it does not add)."""
    import pyarrow as pa

    inp = case["input"]
    spec = mk.RollupSpec.from_dict(inp["spec"])
    query = mk.Query.from_dict(inp["query"])
    dims = sorted({d for part in inp["partitions"] for r in part for d in r.get("dimensions", {})})
    tables = []
    for part in inp["partitions"]:
        rows = [
            {
                "id": r["id"],
                "tenant": r["tenant"],
                "subject": r["subject"],
                "metric": r["metric"],
                "quantity": r["quantity"],
                "timestamp": datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")),
                "quality": r.get("quality"),
                **{d: r.get("dimensions", {}).get(d) for d in dims},
            }
            for r in part
        ]
        schema = pa.schema(
            [(c, pa.string()) for c in ("id", "tenant", "subject", "metric", "quantity")]
            + [("timestamp", pa.timestamp("us", tz="UTC")), ("quality", pa.string())]
            + [(d, pa.string()) for d in dims]
        )
        table = pa.Table.from_pylist(rows, schema=schema)
        tables.append(
            mk.partial_rollup(table, spec, metric_column="metric", quality_column="quality", dimensions=dims or None)
        )
    merged = mk.merge_partials(tables, spec)
    once = mk.Engine()
    mk.import_partials(once, merged, spec)
    final = mk.finalize_partials(merged, spec, tenant=query.tenant)
    assert final.to_pylist() == once.query_arrow(query).to_pylist()
    twice = mk.Engine()
    for _ in range(2):
        mk.import_partials(twice, merged, spec)
    return {
        "partial_rows": [t.num_rows for t in tables],
        "buckets": [b.to_dict() for b in once.query(query)],
        "imported": [b.to_dict() for b in twice.query(query)],
    }


RUNNERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "rollup": run_rollup,
    "bill": run_bill,
    "validate": run_validate,
    "reading": run_reading,
    "counter": run_counter,
    "partial": run_partial,
}

CASES = sorted(VECTORS.glob("**/*.json"))


def test_vectors_exist() -> None:
    assert CASES, f"no vector files under {VECTORS}"


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(VECTORS)) for p in CASES])
def test_vector(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case["name"] == path.stem
    runner = RUNNERS.get(case["kind"])
    assert runner is not None, f"no Python runner for vector kind {case['kind']!r}"
    assert canonical(runner(case)) == canonical(case["expected"])
