"""Validation (VEE) through the Python API: configs, the streaming validator, findings in ingest
reports and events, quality shares in buckets, register readings, gap estimation."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest

import meterkit as mk

from conftest import utc

NOW = utc(2024, 6, 1)


def kwh(i: int, q: str, when: object = None, subject: str = "m1") -> mk.UsageRecord:
    return mk.UsageRecord("t", f"r{i}", subject, "kwh", Decimal(q), when or utc(2024, 5, 1) + timedelta(hours=i))  # type: ignore[arg-type]


def test_validation_config() -> None:
    default = mk.ValidationConfig()
    assert default.window == 10 and default.spikes is True and default.allow_negative is False
    c = mk.ValidationConfig(spikes=False, high_limit=Decimal("5"), time_zone="Europe/London", threshold=4.5)
    assert c.spikes is False and c.high_limit == "5" and c.threshold == 4.5 and c.time_zone == "Europe/London"
    assert mk.ValidationConfig.from_dict(c.to_dict()) == c
    assert mk.ValidationConfig.from_json(c.to_json()) == c
    assert mk.ValidationConfig.naive().confirm is False
    assert "ValidationConfig(" in repr(c)
    with pytest.raises(AttributeError):
        c.no_such_field  # noqa: B018
    with pytest.raises(mk.ValidationError) as e:
        mk.ValidationConfig(window=2)
    assert e.value.code == "E_VALIDATION" and e.value.field == "window"
    with pytest.raises(mk.ValidationError):
        mk.ValidationConfig(no_such_rule=True)
    with pytest.raises(mk.InvalidTimeZone):
        mk.ValidationConfig(time_zone="Nowhere/Town")


def test_validator_checks_and_findings() -> None:
    v = mk.Validator({"kwh": mk.ValidationConfig(high_limit=Decimal(5), spikes=False)}, now=NOW)
    assert v.covers("kwh") and not v.covers("bytes")
    assert v.check(kwh(0, "1")) == []
    [high] = v.check(kwh(1, "7.5"))
    assert (high.rule, high.severity, high.action) == ("high_limit", "warning", "flag")
    assert (high.tenant, high.subject, high.metric, high.id) == ("t", "m1", "kwh", "r1")
    assert high.timestamp == utc(2024, 5, 1, 1) and high.value == Decimal("7.5")
    assert high.message and high.is_alert()
    assert high.to_dict()["rule"] == "high_limit" and json.loads(high.to_json()) == high.to_dict()
    assert mk.Finding.from_dict(high.to_dict()) == high
    assert "high_limit" in high.to_csv_row() and "Finding(" in repr(high)
    assert high.expected is None or isinstance(high.expected[0], Decimal)
    assert high.score is None or isinstance(high.score, Decimal)
    [neg] = v.check(kwh(2, "-1"))
    assert (neg.rule, neg.action) == ("negative_quantity", "reject")
    [unknown] = v.check(mk.UsageRecord("t", "b1", "sim", "bytes", 1, NOW))
    assert unknown.rule == "unknown_metric"
    future = v.check(kwh(3, "1", NOW + timedelta(days=1)))
    assert [f.rule for f in future] == ["future_timestamp"]
    v.set_now(NOW + timedelta(days=2))
    assert v.check(kwh(4, "1", NOW + timedelta(days=1))) == []
    v.set_now(None)
    v.set_config("bytes", mk.ValidationConfig())
    assert v.covers("bytes") and v.series_count() >= 1
    assert [f.rule for f in v.check_all([kwh(10, "1", subject="m9"), kwh(11, "9", subject="m9")])] == ["high_limit"]
    assert "Validator(" in repr(v)
    catch_all = mk.Validator(default=mk.ValidationConfig(), now=NOW)
    assert catch_all.covers("anything")


def test_summary() -> None:
    v = mk.Validator(default=mk.ValidationConfig(high_limit=Decimal(5), spikes=False), now=NOW)
    found = v.check_all([kwh(0, "9"), kwh(1, "-1"), kwh(2, "8")])
    s = mk.ValidationSummary.of(found)
    assert (s.total, s.warning, s.error, s.info, s.rejected, s.flagged) == (3, 2, 1, 0, 1, 2)
    assert s.by_rule["high_limit"]["warning"] == 2 and s.by_rule["negative_quantity"]["error"] == 1
    assert s.to_dict()["total"] == 3 and json.loads(s.to_json()) == s.to_dict()
    assert "ValidationSummary(total=3" in repr(s)


def test_engine_validation_flags_rejects_and_notifies() -> None:
    events: list[mk.Event] = []
    engine = mk.Engine(notifier=events.append)
    engine.set_validation("kwh", mk.ValidationConfig(high_limit=Decimal(5), spikes=False))
    engine.set_validation_now(NOW)
    report = engine.ingest([kwh(0, "1"), kwh(1, "9"), kwh(2, "-2")])
    assert report.accepted == 2
    assert [r.kind for r in report.rejected] == ["validation"] and report.rejected[0].id == "r2"
    assert [f.rule for f in report.findings] == ["high_limit", "negative_quantity"]
    assert "findings=2" in repr(report)
    anomalies = [e for e in events if e.type == "anomaly_detected"]
    assert [a.finding["rule"] for a in anomalies] == ["high_limit", "negative_quantity"]
    stored = engine.records("t", "kwh", utc(2024, 5, 1), utc(2024, 5, 2))
    assert [(r.id, r.quality) for r in stored] == [("r0", "actual"), ("r1", "flagged")]
    [day] = engine.query(mk.Query("t", "kwh", "day", "UTC"))
    assert (day.sum, day.flagged_count, day.flagged_sum) == (Decimal(10), 1, Decimal(9))
    assert (day.estimated_count, day.estimated_sum, day.actual_sum()) == (0, Decimal(0), Decimal(10))
    assert day.flagged_percent() == Decimal(90) and day.estimated_percent() == Decimal(0)
    assert day.to_dict()["flagged_count"] == 1
    engine.set_validation_now(None)


def test_record_quality() -> None:
    r = mk.UsageRecord("t", "e1", "m1", "kwh", 1, NOW, quality="estimated")
    assert r.quality == "estimated" and r.to_dict()["quality"] == "estimated" and "estimated" in repr(r)
    assert kwh(0, "1").quality == "actual" and "quality" not in kwh(0, "1").to_dict()
    with pytest.raises(mk.InvalidRecord) as e:
        mk.UsageRecord("t", "e1", "m1", "kwh", 1, NOW, quality="guessed")
    assert e.value.field == "quality"
    engine = mk.Engine()
    engine.ingest([r, kwh(0, "3", NOW)])
    [b] = engine.query(mk.Query("t", "kwh", "day", "UTC"))
    assert (b.estimated_count, b.estimated_sum, b.actual_sum(), b.estimated_percent()) == (1, Decimal(1), Decimal(3), Decimal(25))


def test_register_readings() -> None:
    first = mk.MeterReading("elec-1", utc(2024, 1, 1), Decimal(9990), register_digits=4)
    assert (first.meter, first.register, first.register_digits, first.multiplier, first.kind) == (
        "elec-1",
        Decimal(9990),
        4,
        Decimal(1),
        "actual",
    )
    assert first.timestamp == utc(2024, 1, 1)
    assert mk.MeterReading.from_dict(first.to_dict()) == first and json.loads(first.to_json()) == first.to_dict()
    assert "MeterReading(" in repr(first)
    tracker = mk.RegisterTracker("t", "kwh")
    rec, found = tracker.push(first)
    assert rec is None and found == []
    rolled = mk.MeterReading("elec-1", utc(2024, 2, 1), 15, register_digits=4)
    rec, found = tracker.push(rolled)
    assert rec is not None and rec.quantity == Decimal(25) and rec.metric == "kwh" and rec.subject == "elec-1"
    last = tracker.last_reading("elec-1")
    assert last is not None and last.register == Decimal(15)
    assert tracker.last_reading("other") is None
    ct = mk.RegisterTracker("t", "kwh")
    recs, found = ct.push_all(
        [
            mk.MeterReading("m2", utc(2024, 1, 1), "100.5", multiplier=40),
            mk.MeterReading("m2", utc(2024, 2, 1), "101.0", multiplier=40, kind="estimated"),
        ]
    )
    assert [(r.quantity, r.quality) for r in recs] == [(Decimal(20), "estimated")]
    back = ct.push(mk.MeterReading("m2", utc(2024, 3, 1), "99", multiplier=40))
    assert back[0] is None and len(back[1]) >= 1
    with pytest.raises(mk.ValidationError):
        mk.MeterReading("m", NOW, 1, kind="guess")


def test_estimate_gaps() -> None:
    series = [kwh(h, str(h)) for h in range(6) if h not in (2, 3)]
    cfg = mk.EstimateConfig(3600)
    assert (cfg.interval_secs, cfg.max_interpolation_intervals, cfg.max_estimated_intervals, cfg.history_weeks, cfg.decimals) == (
        3600,
        4,
        336,
        4,
        6,
    )
    assert mk.EstimateConfig(900, decimals=3, history_weeks=2, max_interpolation_intervals=8, max_estimated_intervals=10).decimals == 3
    assert cfg.to_dict()["interval_secs"] == 3600 and cfg == mk.EstimateConfig(3600)
    assert "EstimateConfig(" in repr(cfg)
    est = mk.estimate_gaps(series, cfg)
    assert [(r.timestamp, r.quantity, r.quality) for r in est] == [
        (utc(2024, 5, 1, 2), Decimal(2), "estimated"),
        (utc(2024, 5, 1, 3), Decimal(3), "estimated"),
    ]


def test_validator_is_thread_safe() -> None:
    v = mk.Validator(default=mk.ValidationConfig(high_limit=Decimal(5), spikes=False), now=NOW)
    counts: list[int] = []

    def worker(s: int) -> None:
        counts.append(len(v.check_all([kwh(i, "9" if i % 2 else "1", subject=f"m{s}") for i in range(200)])))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [100, 100, 100, 100] and v.series_count() == 4


def test_alerts_merge_findings_of_one_fault() -> None:
    # 400 hours alternating 1.0 / 1.2 (past the 288-value warm-up), a day of zeros, 50 more hours.
    records = [kwh(h, "0" if 400 <= h < 424 else ("1.0" if h % 2 == 0 else "1.2")) for h in range(474)]
    v = mk.Validator(default=mk.ValidationConfig(), now=NOW + timedelta(days=30))
    findings = v.check_all(records)
    assert sum(1 for f in findings if f.is_alert()) > 1
    alerts = mk.alerts_of(records, findings)
    assert len(alerts) == 1
    a = alerts[0]
    assert isinstance(a, mk.Alert)
    assert a.subject == "m1" and a.tenant == "t" and a.metric == "kwh"
    assert a.start == utc(2024, 5, 1) + timedelta(hours=400)
    assert a.end >= a.start
    assert "zero_streak" in a.rules and a.severity == "warning"
    assert a.peak == Decimal("0") and a.findings >= 2
    assert a.expected is not None and a.expected[0] < a.expected[1]
    d = a.to_dict()
    assert d["start"] == "2024-05-17T16:00:00Z" and d["peak"] == "0"
    assert json.loads(a.to_json()) == d
    assert alerts == mk.alerts_of(records, findings)
    # Inside the warm-up the same fault raises no alert.
    assert mk.alerts_of(records, findings, warmup=500) == []
    assert len(mk.alerts_of(records, findings, gap=1)) >= 1
    assert "Alert(" in repr(a)


def test_validator_transactions_undo_a_batch_the_host_could_not_store() -> None:
    """begin/commit/rollback like Node's Validator: a rolled-back batch leaves no series state."""
    v = mk.Validator({"kwh": mk.ValidationConfig()}, now=utc(2025, 1, 1))
    v.check(kwh(0, "1.0"))
    assert v.series_count() == 1
    v.begin()
    v.check(kwh(1, "1.0", subject="m2"))
    later = kwh(5, "1.0")
    assert v.check(later) == []
    assert v.series_count() == 2
    v.rollback()
    assert v.series_count() == 1
    # The rolled-back record at hour 5 is forgotten: hour 3 is not out of order.
    assert [f.rule for f in v.check(kwh(3, "1.0"))] == []
    v.begin()
    v.check(kwh(4, "1.0", subject="m3"))
    v.commit()
    v.rollback()  # nothing open: no change
    assert v.series_count() == 2
    assert [f.rule for f in v.check(kwh(2, "1.0"))] == ["out_of_order"]


def test_counter_state_survives_a_restart_and_wraps_at_2_to_the_32(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Engine.track_counters keeps each session's latest reading in the store: after a restart
    the first delta is 2^32 - 4294967000 + 704 = 1000 (a wrapped RADIUS octet counter)."""
    path = str(tmp_path / "counters.db")
    start = mk.MeterReading("s1", utc(2024, 3, 1, 10), 4294967000, register_bits=32)
    assert start.register_bits == 32 and start.register_digits is None
    out = mk.Engine.open(path).track_counters("isp", "bytes", [start], {"dating": "end"})
    assert out["records"] == [] and out["report"]["accepted"] == 0
    engine = mk.Engine.open(path)
    state = engine.counter_state("isp", "bytes", "s1")
    assert state is not None and state.register == Decimal(4294967000) and state.register_bits == 32
    nxt = {"meter": "s1", "timestamp": "2024-03-01T10:05:00Z", "register": "704", "register_bits": 32}
    out = engine.track_counters("isp", "bytes", [nxt], {"dating": "end"})
    assert [(r["id"], r["quantity"]) for r in out["records"]] == [("s1@2024-03-01T10:05:00Z", "1000")]
    assert [f["rule"] for f in out["findings"]] == ["rollover"]
    with pytest.raises(mk.MeterkitError):
        engine.track_counters("isp", "bytes", [nxt], {"datng": "end"})
