"""Engine: ingest, idempotency, queries, top_n, totals, retraction, window closing, events,
SQLite persistence."""

from __future__ import annotations

import sys

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import meterkit as mk

from conftest import utc


def kwh(i: str, q: str, *args: int, subject: str = "m1", tenant: str = "acme", **dims: str) -> mk.UsageRecord:
    return mk.UsageRecord(tenant, i, subject, "kwh", Decimal(q), utc(*args), dimensions=dims or None)


def test_ingest_report_duplicates_and_conflicts() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    report = engine.ingest([kwh("a", "1", 2024, 1, 1), kwh("a", "1.0", 2024, 1, 1), kwh("a", "2", 2024, 1, 1)])
    assert (report.accepted, report.duplicates) == (1, 1)
    [rej] = report.rejected
    assert isinstance(report, mk.IngestReport) and isinstance(rej, mk.Rejection)
    assert (rej.tenant, rej.id, rej.kind, rej.code) == ("acme", "a", "conflict", "E_CONFLICT")
    assert "different content" in rej.reason
    assert report.to_dict()["rejected"][0]["kind"] == "conflict"
    assert "IngestReport(accepted=1" in repr(report) and "Rejection(" in repr(rej)
    assert rej == report.rejected[0]
    # Across batches too.
    again = engine.ingest([kwh("a", "1", 2024, 1, 1)])
    assert (again.accepted, again.duplicates, again.rejected) == (0, 1, [])
    [ev] = events
    assert ev.type == "record_rejected" and ev.id == "a" and ev.kind == "conflict"
    assert set(ev.fields()) == {"type", "tenant", "id", "kind", "reason"}
    assert ev.to_dict()["tenant"] == "acme" and '"type":"record_rejected"' in ev.to_json()
    assert "Event(" in repr(ev)
    with pytest.raises(AttributeError):
        ev.no_such_field  # noqa: B018


def test_invalid_records_are_rejected_not_raised() -> None:
    engine = mk.Engine()
    bad = mk.UsageRecord("acme", "", "m1", "kwh", 1, utc(2024, 1, 1))
    report = engine.ingest([bad, kwh("ok", "1", 2024, 1, 1)])
    assert report.accepted == 1
    assert [r.kind for r in report.rejected] == ["invalid_record"]


def test_ingest_accepts_any_iterable_and_checks_types() -> None:
    engine = mk.Engine()
    report = engine.ingest(kwh(str(h), "0.5", 2024, 1, 1, h) for h in range(24))
    assert report.accepted == 24
    with pytest.raises(TypeError):
        engine.ingest([{"id": "x"}])  # type: ignore[list-item]


def test_query_days_in_new_york_with_dst_and_fill() -> None:
    engine = mk.Engine()
    engine.ingest([kwh(f"h{h}", "0.5", 2024, 3, 10, h) for h in range(24)])
    q = mk.Query("acme", "kwh", "day", "America/New_York", from_=utc(2024, 3, 10), to=utc(2024, 3, 10, 23), fill="zero")
    days = engine.query(q)
    assert [b.sum for b in days] == [Decimal("2.5"), Decimal("9.5")]
    assert [b.count for b in days] == [5, 19]
    # 10 March 2024 is a 23-hour day in New York.
    assert days[1].window_end - days[1].window_start == timedelta(hours=23)
    b = days[1]
    assert (b.metric, b.subject, b.group, b.unique) == ("kwh", None, {}, {})
    assert (b.min, b.max, b.mean, b.latest) == (Decimal("0.5"), Decimal("0.5"), Decimal("0.5"), Decimal("0.5"))
    assert b.to_dict()["window_start"] == "2024-03-10T05:00:00Z"
    assert mk.Bucket.from_dict(b.to_dict()) == b and hash(b) == hash(mk.Bucket.from_dict(b.to_dict()))
    assert "Bucket(" in repr(b) and "Decimal('9.5')" in repr(b)


def test_empty_filled_window_has_none_aggregates() -> None:
    engine = mk.Engine()
    q = mk.Query("acme", "kwh", "day", "UTC", from_=utc(2024, 1, 1), to=utc(2024, 1, 2), fill="zero")
    [b] = engine.query(q)
    assert (b.sum, b.count, b.min, b.max, b.mean, b.latest) == (Decimal(0), 0, None, None, None, None)
    with pytest.raises(mk.InvalidQuery):
        engine.query(mk.Query("acme", "kwh", "day", "UTC", fill="zero"))
    with pytest.raises(mk.InvalidQuery):
        engine.query(mk.Query("acme", "kwh", "day", "UTC", from_=utc(2024, 2, 1), to=utc(2024, 1, 1)))


def test_group_by_filters_unique_and_top_n() -> None:
    engine = mk.Engine()
    engine.add_spec(mk.RollupSpec("kwh", "day", "UTC", group_by=["carrier"], unique=["subject"]))
    engine.ingest(
        [
            kwh("1", "5", 2024, 1, 1, 1, subject="s1", carrier="ee"),
            kwh("2", "7", 2024, 1, 1, 2, subject="s2", carrier="ee"),
            kwh("3", "3", 2024, 1, 1, 3, subject="s1", carrier="o2"),
            kwh("4", "1", 2024, 1, 2, 3, subject="s3", carrier="o2"),
        ]
    )
    q = mk.Query("acme", "kwh", "day", "UTC", group_by=["carrier"], unique=["subject"])
    rows = engine.query(q)
    assert [(b.group["carrier"], b.sum, b.unique["subject"]) for b in rows] == [
        ("ee", Decimal(12), 2),
        ("o2", Decimal(3), 1),
        ("o2", Decimal(1), 1),
    ]
    only_o2 = engine.query(mk.Query("acme", "kwh", "day", "UTC", filters={"carrier": "o2"}))
    assert [b.sum for b in only_o2] == [Decimal(3), Decimal(1)]
    s1 = engine.query(mk.Query("acme", "kwh", "day", "UTC", subject="s1"))
    assert [(b.subject, b.sum) for b in s1] == [("s1", Decimal(8))]
    top = engine.top_n(mk.Query("acme", "kwh", "day", "UTC", group_by=["carrier"]), "sum", 1)
    assert [(b.group["carrier"], b.sum) for b in top] == [("ee", Decimal(12))]
    top_count = engine.top_n(mk.Query("acme", "kwh", "day", "UTC", group_by=["carrier"]), by="count", n=5)
    assert [(b.group["carrier"], b.count) for b in top_count] == [("ee", 2), ("o2", 2)]
    by_unique = engine.top_n(q, "unique_count:subject", 1)
    assert by_unique[0].unique == {"subject": 2}
    with pytest.raises(mk.ParseError):  # the core's kind, as in Node and Kotlin
        engine.top_n(q, "median", 1)
    # The subject query had no spec grouped by subject: it was answered from the records and
    # added none (issue 14 item 8).
    assert [s.group_by for s in engine.specs()] == [["carrier"]]


def test_add_spec_backfills_and_is_idempotent() -> None:
    engine = mk.Engine()
    engine.ingest([kwh("1", "2", 2024, 5, 1)])
    spec = mk.RollupSpec("kwh", "month", "Europe/London")
    first = engine.add_spec(spec)
    assert engine.add_spec(spec) == first
    assert engine.specs() == [spec]
    [b] = engine.query(mk.Query("acme", "kwh", "month", "Europe/London"))
    assert b.sum == Decimal(2) and b.window_start == utc(2024, 4, 30, 23)


def test_totals_for_kpi_cards() -> None:
    engine = mk.Engine()
    engine.ingest([kwh("jan", "100", 2024, 1, 15), kwh("feb", "150", 2024, 2, 15)])
    t = engine.totals("acme", "kwh", "month", "UTC", utc(2024, 2, 20))
    assert isinstance(t, mk.Totals) and isinstance(t.current, mk.Bucket)
    assert (t.previous.sum, t.current.sum, t.change_percent) == (Decimal(100), Decimal(150), Decimal(50))
    assert t.to_dict()["change_percent"] == "50"
    assert "Totals(" in repr(t)
    empty = engine.totals("acme", "kwh", "month", "UTC", utc(2023, 6, 1))
    assert empty.change_percent is None


def test_retract_and_records() -> None:
    engine = mk.Engine()
    engine.ingest([kwh("1", "2", 2024, 1, 1, 1), kwh("2", "9", 2024, 1, 1, 2), kwh("3", "4", 2024, 1, 1, 3, subject="m2")])
    removed = engine.retract("acme", "2")
    assert removed.id == "2" and removed.quantity == Decimal(9)
    [b] = engine.query(mk.Query("acme", "kwh", "day", "UTC"))
    assert (b.sum, b.count, b.max, b.latest) == (Decimal(6), 2, Decimal(4), Decimal(4))
    recs = engine.records("acme", "kwh", utc(2024, 1, 1), utc(2024, 1, 2))
    assert [r.id for r in recs] == ["1", "3"]
    assert [r.id for r in engine.records("acme", "kwh", utc(2024, 1, 1), utc(2024, 1, 2), subject="m2")] == ["3"]
    with pytest.raises(mk.NotFoundError):
        engine.retract("acme", "2")


def test_close_windows_and_late_records() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    engine.add_spec(mk.RollupSpec("kwh", "day", "UTC"))
    engine.ingest([kwh("1", "2", 2024, 1, 1, 5)])
    assert engine.close_windows("acme", utc(2024, 1, 2, 12), timedelta(hours=6)) == 1
    assert engine.close_windows("acme", utc(2024, 1, 3)) == 0
    closed = events[-1]
    assert closed.type == "window_closed" and closed.window == "day"
    assert isinstance(closed.bucket, mk.Bucket) and closed.bucket.sum == Decimal(2)
    engine.ingest([kwh("2", "3", 2024, 1, 1, 6)])
    late = events[-1]
    assert late.type == "late_record" and late.id == "2" and late.bucket.sum == Decimal(5)
    with pytest.raises(TypeError):
        engine.close_windows("acme", utc(2024, 1, 3), 5)  # type: ignore[arg-type]


def test_notifier_must_be_callable_and_its_errors_are_unraisable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError):
        mk.Engine(notifier=42)  # type: ignore[arg-type]

    def boom(_: mk.Event) -> None:
        raise RuntimeError("notifier failed")

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    engine = mk.Engine(notifier=boom)
    report = engine.ingest([kwh("a", "1", 2024, 1, 1), kwh("a", "2", 2024, 1, 1)])
    assert report.accepted == 1  # the stored change stands
    [info] = unraisable
    assert isinstance(info.exc_value, RuntimeError)  # type: ignore[attr-defined]


def test_notifier_may_call_back_into_the_engine() -> None:
    seen: list[int] = []
    engine: mk.Engine

    def on_event(ev: mk.Event) -> None:
        seen.append(len(engine.query(mk.Query("acme", "kwh", "day", "UTC"))))

    engine = mk.Engine(notifier=on_event)
    engine.ingest([kwh("a", "1", 2024, 1, 1), kwh("a", "2", 2024, 1, 1)])
    assert seen == [1]


def test_sqlite_engine_persists(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    engine = mk.Engine.open(path)
    assert "sqlite" in repr(engine)
    engine.add_spec(mk.RollupSpec("kwh", "day", "Europe/London"))
    engine.ingest([kwh("1", "1.25", 2024, 6, 1, 23, 30)])
    del engine
    reopened = mk.Engine.open(str(path))
    [b] = reopened.query(mk.Query("acme", "kwh", "day", "Europe/London"))
    assert b.sum == Decimal("1.25") and b.window_start == utc(2024, 6, 1, 23)
    assert reopened.ingest([kwh("1", "1.25", 2024, 6, 1, 23, 30)]).duplicates == 1
    assert len(reopened.specs()) == 1
    assert repr(mk.Engine()) == "Engine(in_memory)"
