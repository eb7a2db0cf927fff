"""Every shared case in tests/vectors/ run through the Python API, compared byte for byte with
the canonical JSON of its "expected" part (the rule of tests/vectors/README.md)."""

from __future__ import annotations

import json
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


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"rollup": run_rollup, "bill": run_bill}

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
