"""The outbox (the core's pending-upload queue) and the store-less reading check, through Engine."""

from __future__ import annotations

from decimal import Decimal

import meterkit as mk

from conftest import utc


def kwh(i: str, q: str) -> mk.UsageRecord:
    return mk.UsageRecord("acme", i, "m1", "kwh", Decimal(q), utc(2024, 1, 15))


def test_outbox_queue_pending_ack_purge() -> None:
    engine = mk.Engine()
    report = engine.outbox_queue([kwh("a", "1"), kwh("b", "2"), kwh("c", "3")])
    assert report.accepted == 3
    assert engine.outbox_count("acme") == 3
    assert [r.id for r in engine.outbox_pending("acme", 2)] == ["a", "b"]
    assert engine.outbox_ack("acme", ["a", "b", "nope"], utc(2024, 2, 1)) == 2
    assert engine.outbox_count("acme") == 1
    # Acknowledged records are not queued again within the retention window.
    assert engine.outbox_queue([kwh("a", "1")]).duplicates == 1
    assert [r.id for r in engine.outbox_pending("acme", 10)] == ["c"]
    # After the window, purge removes the sent markers of a and b.
    assert engine.outbox_purge("acme", utc(2024, 4, 1)) == 2
    assert engine.outbox_ack("acme", ["c"]) == 1
    assert engine.outbox_count("acme") == 0


def test_check_reading_stores_nothing() -> None:
    engine = mk.Engine()
    first = {"meter": "m1", "timestamp": "2024-01-01T00:00:00Z", "register": "1000", "register_digits": 5}
    engine.record_reading("acme", "kwh", first)
    back = {**first, "timestamp": "2024-01-02T00:00:00Z", "register": "999"}
    assert engine.check_reading("acme", "kwh", back)["status"] == "rejected"
    up = {**first, "timestamp": "2024-01-03T00:00:00Z", "register": "1010"}
    checked = engine.check_reading("acme", "kwh", up)
    assert (checked["status"], checked["consumption"]) == ("accepted", "10")
    assert engine.records("acme", "kwh", utc(2024, 1, 1), utc(2024, 2, 1)) == []
    assert engine.record_reading("acme", "kwh", up)["records"] == checked["records"]
