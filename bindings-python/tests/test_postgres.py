"""Engine.open("postgres://…"): two engines (two connections) on one PostgreSQL database ingest
overlapping batches from two threads; every record counts once and both see the same buckets as
an in-memory engine. Needs METERKIT_PG_URL (scripts/pg-server sets it); skipped without it, failed
when METERKIT_REQUIRE_PG=1."""

from __future__ import annotations

import os
import threading
import uuid
from decimal import Decimal

import pytest

import meterkit as mk

from conftest import utc


def pg_url() -> str:
    url = os.environ.get("METERKIT_PG_URL", "")
    if not url:
        if os.environ.get("METERKIT_REQUIRE_PG") == "1":
            pytest.fail("METERKIT_REQUIRE_PG=1 but METERKIT_PG_URL is unset")
        pytest.skip("no PostgreSQL server: set METERKIT_PG_URL (or run scripts/test-postgres)")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}schema=py_{uuid.uuid4().hex[:12]}"


def batch(lo: int, hi: int) -> list[mk.UsageRecord]:
    return [
        mk.UsageRecord(
            "acme", f"r{i}", f"sim-{i % 7}", "bytes", Decimal(f"{i % 13}.{i % 10}"), utc(2024, 5, 1 + i % 5, i % 24),
            dimensions={"carrier": ["ee", "o2"][i % 2]},
        )
        for i in range(lo, hi)
    ]


def test_two_engines_on_one_postgres_url_count_every_record_once() -> None:
    url = pg_url()
    a, b = mk.Engine.open(url), mk.Engine.open(url)
    assert "postgres" in repr(a)
    reports: list[mk.IngestReport] = []

    def run(engine: mk.Engine, lo: int, hi: int) -> None:
        for start in range(lo, hi, 500):
            reports.append(engine.ingest(batch(start, min(start + 500, hi))))

    threads = [threading.Thread(target=run, args=(a, 0, 3000)), threading.Thread(target=run, args=(b, 2000, 5000))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.accepted for r in reports) == 5000
    assert sum(r.duplicates for r in reports) == 1000
    single = mk.Engine()
    single.ingest(batch(0, 5000))
    q = mk.Query("acme", "bytes", "day", "Europe/London", group_by=["carrier"], unique=["subject"])
    expected = [x.to_dict() for x in single.query(q)]
    assert [x.to_dict() for x in a.query(q)] == expected
    assert [x.to_dict() for x in mk.Engine.open(url).query(q)] == expected
