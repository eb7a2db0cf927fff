"""Issue 14 through the Python API: unknown keys refused by name, quotas on any window kept at
ingest, repeated batches answered as duplicates, per-source watermarks."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import meterkit as mk

from conftest import utc

RECORD = {
    "id": "1",
    "tenant": "t",
    "subject": "s",
    "metric": "bytes",
    "quantity": "5",
    "timestamp": "2024-05-01T00:00:00Z",
}


def test_misspelt_keys_are_refused_naming_them() -> None:
    with pytest.raises(mk.ParseError, match="dimension"):
        mk.UsageRecord.from_dict({**RECORD, "dimension": {"carrier": "a"}})
    assert mk.UsageRecord.from_dict({**RECORD, "dimensions": {"carrier": "a"}}).dimensions == {"carrier": "a"}
    quota = {"id": "q", "tenant": "t", "metric": "bytes", "period": "day", "time_zone": "UTC", "limit": "1", "levels": ["100"]}
    with pytest.raises(mk.ParseError, match="subjet"):
        mk.Quota.from_dict({**quota, "subjet": "s"})
    with pytest.raises(mk.ParseError, match="groupBy"):
        mk.Query.from_dict({"tenant": "t", "metric": "m", "window": "day", "time_zone": "UTC", "groupBy": ["c"]})
    with pytest.raises(mk.ParseError, match="grup_by"):
        mk.RollupSpec.from_dict({"metric": "m", "window": "day", "time_zone": "UTC", "grup_by": ["c"]})


def test_daily_cap_fires_per_subject_per_day() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    engine.add_quota(mk.Quota("cap", "t", "bytes", "day", "UTC", 100, [80, 100]))
    rec = lambda i, day, q: mk.UsageRecord("t", str(i), "s", "bytes", q, utc(2024, 5, day, 12))  # noqa: E731
    engine.ingest([rec(1, 1, 50), rec(2, 2, 90)])
    engine.ingest([rec(3, 1, 30)])
    crossed = [(str(e.period_start), str(e.level), str(e.used)) for e in events if e.type == "threshold_crossed"]
    assert crossed == [("2024-05-02T00:00:00Z", "80", "90"), ("2024-05-01T00:00:00Z", "80", "80")]


def test_repeated_batch_and_source_watermark() -> None:
    engine = mk.Engine()
    batch = [
        mk.UsageRecord("api", f"r{i}", "portal", "requests", 1, utc(2024, 6, 1, 9, i % 60)) for i in range(100)
    ]
    assert engine.last_ingested_at("api", "hourly") is None
    assert engine.ingest_from("hourly", batch).accepted == 100
    again = engine.ingest_from("hourly", batch)
    assert (again.accepted, again.duplicates) == (0, 100)
    assert engine.last_ingested_at("api", "hourly") == utc(2024, 6, 1, 9, 59)
    engine.retract("api", "r7")
    assert engine.ingest(batch).accepted == 1
    with pytest.raises(mk.InvalidQuery) as e:
        engine.ingest_from("", batch)
    assert e.value.field == "source"


def test_replace_keeps_the_old_version_in_history() -> None:
    engine = mk.Engine()
    day = lambda q: mk.UsageRecord("org", "d1", "org-1", "msgs", q, utc(2024, 7, 1, 10))  # noqa: E731
    engine.ingest([day(10)])
    report = engine.replace([day(12), mk.UsageRecord("org", "d2", "org-1", "msgs", 1, utc(2024, 7, 1, 11))])
    assert (report.accepted, report.replaced, report.duplicates) == (1, 1, 0)
    assert [r.quantity for r in engine.history("org", "d1")] == [Decimal(10)]
    rows = engine.query(mk.Query("org", "msgs", "day", "UTC"))
    assert rows[0].sum == Decimal(13) and rows[0].count == 2
    with pytest.raises(mk.InvalidRecord):
        engine.replace([day(1), day(2)])


def test_tariff_from_dict_and_from_json_check_at_parse_time() -> None:
    doc = {"currency": "GBP", "charges": [{"id": "e", "type": "per_unit", "rate": "0.25"}]}
    t = mk.Tariff.from_dict(doc)
    t.check()  # a tariff given with top-level charges is valid
    assert t == mk.Tariff.from_json(json.dumps(doc))
    with pytest.raises(mk.TariffError) as e:
        mk.Tariff.from_dict({**doc, "currency": "pounds"})
    assert e.value.field == "currency"
    with pytest.raises(mk.TariffError):
        mk.Tariff.from_json(json.dumps({"currency": "GBP", "charges": []}))
