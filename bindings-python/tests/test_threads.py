"""One engine, four threads ingesting at once: every record lands exactly once."""

from __future__ import annotations

import threading
from decimal import Decimal

import meterkit as mk

from conftest import utc


def test_four_threads_ingest_into_one_engine() -> None:
    engine = mk.Engine()
    engine.add_spec(mk.RollupSpec("kwh", "day", "UTC", group_by=["subject"]))
    errors: list[BaseException] = []
    reports: list[mk.IngestReport] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        try:
            for batch in range(25):
                recs = [
                    mk.UsageRecord(
                        "acme", f"t{t}-b{batch}-{i}", f"meter-{t}", "kwh", Decimal("0.001"), utc(2024, 1, 1 + i % 28, i % 24)
                    )
                    for i in range(40)
                ]
                # Each thread also re-sends an id another thread owns: a duplicate or not yet seen.
                r = engine.ingest(recs)
                with lock:
                    reports.append(r)
                engine.query(mk.Query("acme", "kwh", "day", "UTC", subject=f"meter-{t}"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sum(r.accepted for r in reports) == 4 * 25 * 40
    assert all(r.rejected == [] and r.duplicates == 0 for r in reports)
    rows = engine.query(mk.Query("acme", "kwh", "month", "UTC", group_by=["subject"]))
    assert {(b.subject, b.sum, b.count) for b in rows} == {(f"meter-{t}", Decimal("1.000"), 1000) for t in range(4)}


def test_threads_racing_on_the_same_ids_store_each_once() -> None:
    engine = mk.Engine()
    recs = [mk.UsageRecord("acme", f"r{i}", "m", "kwh", 1, utc(2024, 1, 1, i % 24)) for i in range(500)]
    reports: list[mk.IngestReport] = []

    def worker() -> None:
        reports.append(engine.ingest(recs))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r.accepted for r in reports) == [0, 0, 0, 500]
    assert sum(r.duplicates for r in reports) == 1500
    [b] = engine.query(mk.Query("acme", "kwh", "day", "UTC"))
    assert (b.sum, b.count) == (Decimal(500), 500)
